//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use techdiff::run::{RunResults, run_scenario};
use techdiff::scenario::{FileSource, LoadedScenario, load_text};
use techdiff::sim::Variant;

/// Load a scenario from TOML text (relative files resolve against `scenarios/`).
pub fn load(toml: &str, overrides: &[&str]) -> LoadedScenario {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load_text(
        toml,
        "test.toml",
        FileSource::Disk(repo().join("scenarios")),
        &overrides,
    )
    .unwrap_or_else(|e| panic!("test scenario is invalid: {e}"))
}

/// Run every replication of a scenario.
pub fn run(loaded: &LoadedScenario) -> RunResults {
    run_scenario(&loaded.scenario, loaded.scenario.replications, &|| {})
}

/// The final-step value of (group, metric) for a variant and replication.
pub fn final_value(res: &RunResults, variant: Variant, rep: u32, group: &str, metric: &str) -> f64 {
    let idx = res
        .layout
        .find(group, metric)
        .unwrap_or_else(|| panic!("no series {group}/{metric}"));
    res.get(variant, rep).series.last().unwrap().values[idx]
}

/// The mean over replications of a final-step value.
pub fn mean_final(res: &RunResults, variant: Variant, group: &str, metric: &str) -> f64 {
    let n = res.replications;
    (0..n)
        .map(|r| final_value(res, variant, r, group, metric))
        .sum::<f64>()
        / f64::from(n)
}

/// The value of (group, metric) at every step.
pub fn series(res: &RunResults, variant: Variant, rep: u32, group: &str, metric: &str) -> Vec<f64> {
    let idx = res.layout.find(group, metric).unwrap();
    res.get(variant, rep)
        .series
        .iter()
        .map(|s| s.values[idx])
        .collect()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_techdiff"))
}

/// Run the techdiff binary with `args` in the folder `cwd`.
pub fn techdiff_in(args: &[&str], cwd: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// As [`techdiff_in`], and fail the test with techdiff's stderr unless it
/// succeeds.
pub fn techdiff_ok(args: &[&str], cwd: &Path) -> Output {
    let out = techdiff_in(args, cwd);
    assert!(
        out.status.success(),
        "techdiff {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Write `dir/base.toml`: scenarios/bench/small.toml shortened to 6 steps,
/// a quick base scenario for sweeps.
pub fn write_small_base(dir: &Path) {
    std::fs::write(
        dir.join("base.toml"),
        std::fs::read_to_string(repo().join("scenarios/bench/small.toml"))
            .unwrap()
            .replace("steps = 50", "steps = 6"),
    )
    .unwrap();
}
