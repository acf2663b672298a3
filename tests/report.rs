//! `techdiff report` and `--report` end to end: the files a report writes,
//! that redrawing gives the same bytes, and bad folders (exit code 2).

mod common;

use std::path::Path;

use common::*;

/// What techdiff prints when run with `args` in `cwd`; it must succeed.
fn stdout_of(args: &[&str], cwd: &Path) -> String {
    String::from_utf8_lossy(&techdiff_ok(args, cwd).stdout).into_owned()
}

fn plots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn run_and_sweep_reports_are_written_and_redrawn_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = repo().join("scenarios/tightening.toml");
    let run = tmp.path().join("run");
    let stdout = stdout_of(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--reps",
            "2",
            "--set",
            "steps=5",
            "--set",
            "innovation.per_step=50",
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--report",
        ],
        tmp.path(),
    );
    assert!(stdout.contains("run report written to"), "{stdout}");
    let first = std::fs::read(run.join("report.html")).unwrap();
    assert_eq!(
        plots(&run),
        [
            "adoption_by_sector.svg",
            "coinvention_share.svg",
            "controls.svg",
            "productivity_by_bloc.svg",
            "productivity_by_income.svg",
            "securitization_cost.svg",
            "trust_and_retaliation.svg",
            "world_map.svg"
        ]
    );
    // `techdiff report DIR` redraws the same page.
    let stdout = stdout_of(&["report", run.to_str().unwrap()], tmp.path());
    assert!(stdout.contains("8 charts"), "{stdout}");
    assert_eq!(std::fs::read(run.join("report.html")).unwrap(), first);

    write_small_base(tmp.path());
    std::fs::write(
        tmp.path().join("sweep.toml"),
        r#"scenario = "base.toml"
replications = 2
metrics = ["securitization_cost@all", "securitization_cost@income:low", "coinvention_share@all"]
[[param]]
name = "licence"
path = "policy.export_control[0].licence_rate"
values = [0.1, 0.9]
[[param]]
name = "chilling"
path = "policy.cooperation.chilling"
values = [0.0, 0.5]
"#,
    )
    .unwrap();
    let sweep = tmp.path().join("sweep");
    let stdout = stdout_of(
        &[
            "sweep",
            "sweep.toml",
            "--out",
            sweep.to_str().unwrap(),
            "--quiet",
            "--report",
        ],
        tmp.path(),
    );
    assert!(stdout.contains("sweep report written to"), "{stdout}");
    assert_eq!(
        plots(&sweep),
        [
            "effect_coinvention_share.svg",
            "effect_securitization_cost.svg",
            "heatmap_coinvention_share_all_licence_chilling.svg",
            "heatmap_securitization_cost_all_licence_chilling.svg",
            "heatmap_securitization_cost_income_low_licence_chilling.svg"
        ]
    );
    let html = std::fs::read_to_string(sweep.join("report.html")).unwrap();
    assert!(html.contains("techdiff sweep sweep.toml --out DIR"));
}

#[test]
fn bad_folders_exit_2_with_one_message() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    std::fs::create_dir(tmp.path().join("broken")).unwrap();
    std::fs::write(
        tmp.path().join("broken/manifest.json"),
        "{\"scenario_name\": \"x\"",
    )
    .unwrap();
    for (dir, parts) in [
        ("nowhere", &["nowhere", "no such folder"][..]),
        ("empty", &["empty", "no manifest.json"]),
        ("broken", &["manifest.json:1:", "malformed JSON"]),
    ] {
        let out = techdiff_in(&["report", dir], tmp.path());
        assert_eq!(out.status.code(), Some(2), "{dir}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        for p in parts {
            assert!(stderr.contains(p), "`{p}` not in {stderr}");
        }
        assert!(!tmp.path().join(dir).join("report.html").exists());
    }
}

/// A file cut short or edited is refused, not drawn from what is left:
/// timeseries.csv must have rows at every step of every replication of
/// both variants, and runs.csv one row per run, each `ok` or `failed`.
#[test]
fn cut_or_edited_files_exit_2_with_one_message() {
    let tmp = tempfile::tempdir().unwrap();
    write_small_base(tmp.path());
    techdiff_ok(
        &["run", "base.toml", "--reps", "2", "--out", "run", "--quiet"],
        tmp.path(),
    );
    std::fs::write(
        tmp.path().join("sweep.toml"),
        r#"scenario = "base.toml"
replications = 2
metrics = ["securitization_cost@all"]
[[param]]
name = "licence"
path = "policy.export_control[0].licence_rate"
values = [0.1, 0.9]
"#,
    )
    .unwrap();
    techdiff_ok(
        &["sweep", "sweep.toml", "--out", "sweep", "--quiet"],
        tmp.path(),
    );
    // The folders as written report fine.
    for dir in ["run", "sweep"] {
        techdiff_ok(&["report", dir], tmp.path());
    }
    let lines = |dir: &str, file: &str| -> Vec<String> {
        std::fs::read_to_string(tmp.path().join(dir).join(file))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let ts = lines("run", "timeseries.csv");
    let runs = lines("sweep", "runs.csv");
    assert_eq!(runs.len(), 5, "a header and 2 x 2 runs");
    let weird = {
        let mut r = runs.clone();
        r[2] = r[2].replacen(",ok,", ",weird,", 1);
        r
    };
    let cases: Vec<(&str, &str, Vec<String>, &[&str])> = vec![
        (
            "run",
            "timeseries.csv",
            ts[..ts.len() / 2].to_vec(),
            &[
                "timeseries.csv",
                "no rows for the counterfactual variant",
                "incomplete",
            ],
        ),
        // The last step of the last replication gone whole.
        (
            "run",
            "timeseries.csv",
            ts.iter()
                .filter(|l| !l.starts_with("counterfactual,1,6,"))
                .cloned()
                .collect(),
            &[
                "timeseries.csv",
                "no rows for the counterfactual variant, replication 1, step 6",
            ],
        ),
        (
            "sweep",
            "runs.csv",
            runs[..1].to_vec(),
            &["runs.csv", "4 of the 4 runs", "incomplete"],
        ),
        (
            "sweep",
            "runs.csv",
            runs[..4].to_vec(),
            &["runs.csv", "1 of the 4 runs", "incomplete"],
        ),
        (
            "sweep",
            "runs.csv",
            weird,
            &["runs.csv", "line 3", "`weird` is not `ok` or `failed`"],
        ),
        (
            "sweep",
            "runs.csv",
            [runs.clone(), runs[4..].to_vec()].concat(),
            &["runs.csv", "line 6", "has a row already"],
        ),
    ];
    for (k, (dir, file, text, parts)) in cases.into_iter().enumerate() {
        let copy = tmp.path().join(format!("case{k}"));
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(tmp.path().join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
            }
        }
        std::fs::write(copy.join(file), text.join("\n") + "\n").unwrap();
        let _ = std::fs::remove_file(copy.join("report.html"));
        let out = techdiff_in(&["report", copy.to_str().unwrap()], tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {k}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "case {k}: {stderr}");
        for p in parts {
            assert!(stderr.contains(p), "case {k}: `{p}` not in {stderr}");
        }
        assert!(!copy.join("report.html").exists(), "case {k}");
    }
}
