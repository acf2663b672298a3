//! Sweeps end to end: determinism across threads, interruption and resume,
//! sharding and merging, failed runs, and bad sweep files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const SCENARIO: &str = r#"name = "tiny"
steps = 8
seed = 3
replications = 1
[world.synthetic]
count = 10
blocs = { A = 0.4, B = 0.6 }
income = { high = 0.3, upper_middle = 0.3, lower_middle = 0.2, low = 0.2 }
gdp = { distribution = "lognormal", mu = 0.0, sigma = 1.0 }
[[sector]]
name = "chips"
sensitivity = 0.9
[[sector]]
name = "health"
sensitivity = 0.3
[innovation]
per_step = 20
[trust]
retaliation = true
min_trust = 0.55
retaliation_threshold = 0.1
[[policy.export_control]]
name = "r"
controllers = ["bloc:A"]
sectors = { chips = 0.5, health = 0.2 }
licence_rate = 0.2
"#;

fn setup(sweep: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.toml"), SCENARIO).unwrap();
    let path = dir.path().join("sweep.toml");
    std::fs::write(&path, sweep).unwrap();
    (dir, path)
}

fn techdiff(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// `techdiff sweep SWEEP [EXTRA..] --out OUT --quiet`.
fn sweep_to(sweep: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sweep", sweep.to_str().unwrap()];
    args.extend(extra);
    args.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    techdiff(&args)
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const FINAL_FILES: [&str; 5] = [
    "runs.csv",
    "points.csv",
    "failures.csv",
    "sensitivity.csv",
    "manifest.json",
];

fn read(dir: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(name)).ok()
}

/// The final files that must be identical (manifest excluded: it has timings).
fn assert_same_results(a: &Path, b: &Path) {
    for f in &FINAL_FILES[..4] {
        assert_eq!(
            read(a, f),
            read(b, f),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert!(read(a, "runs.csv").is_some());
}

/// Two parameters over [0, 1], for the sobol and morris designs.
const TWO_UNIT_PARAMS: &str = r#"[[param]]
path = "policy.export_control[r].licence_rate"
min = 0.0
max = 1.0
[[param]]
path = "trust.erosion"
min = 0.0
max = 1.0
"#;

const GRID: &str = r#"scenario = "base.toml"
replications = 3
design = "grid"
seed = 9
metrics = ["securitization_cost@all", "securitization_cost@income:low", "mean_trust@bloc:B", "retaliations_opened_total@all"]
[[param]]
name = "scope"
path = "policy.export_control[r].sectors.chips"
min = 0.0
max = 0.8
steps = 3
[[param]]
path = "policy.export_control[r].licence_rate"
values = [0.1, 0.6]
"#;

#[test]
fn grid_sweep_is_identical_at_one_and_two_threads() {
    let (tmp, sweep) = setup(GRID);
    let one = tmp.path().join("one");
    let two = tmp.path().join("two");
    ok(&sweep_to(&sweep, &one, &["--threads", "1"]));
    ok(&sweep_to(&sweep, &two, &["--threads", "2"]));
    assert_same_results(&one, &two);
    let runs = String::from_utf8(read(&one, "runs.csv").unwrap()).unwrap();
    assert_eq!(runs.lines().count(), 1 + 6 * 3);
    assert!(runs.starts_with("point,replication,seed,scope,policy.export_control[r].licence_rate,status,securitization_cost@all,"));
    // Grid by index: the middle value is exactly 0.4.
    assert!(
        runs.lines().any(|l| l.starts_with("2,0,9,0.4,0.1,ok,")),
        "{runs}"
    );
    let points = String::from_utf8(read(&one, "points.csv").unwrap()).unwrap();
    assert_eq!(points.lines().count(), 1 + 6);
    // Against the counterfactual, the paired difference of the cost is the
    // cost itself; a wider scope costs more (common random numbers).
    let cost = |line: &str| -> (f64, f64) {
        let f: Vec<&str> = line.split(',').collect();
        (f[4].parse().unwrap(), f[8].parse().unwrap())
    };
    let narrow = points
        .lines()
        .find(|l| l.starts_with("0,0.0,0.1,3,"))
        .expect("point 0");
    let wide = points
        .lines()
        .find(|l| l.starts_with("4,0.8,0.1,3,"))
        .expect("point 4");
    let (mean_n, diff_n) = cost(narrow);
    assert_eq!(mean_n, diff_n);
    assert!(cost(wide).0 > mean_n, "{wide} vs {narrow}");
}

#[test]
fn interrupted_sweep_resumes_to_the_same_files() {
    let (tmp, sweep) = setup(GRID);
    let s = sweep.to_str().unwrap();
    let whole = tmp.path().join("whole");
    ok(&sweep_to(&sweep, &whole, &[]));

    // A real kill: stop the process once some runs are in the journal.
    let cut = tmp.path().join("cut");
    let mut child = Command::new(bin())
        .args([
            "sweep",
            s,
            "--threads",
            "1",
            "--out",
            cut.to_str().unwrap(),
            "--quiet",
        ])
        .spawn()
        .unwrap();
    let journal = cut.join("runs.jsonl");
    let start = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(&journal)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 2 || start.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever the kill left (possibly nothing final), plus a torn last line.
    let mut text = std::fs::read_to_string(&journal).unwrap();
    let kept: Vec<&str> = text.lines().take(4).collect();
    text = kept.join("\n") + "\n{\"point\":1,\"repl";
    std::fs::write(&journal, text).unwrap();
    for f in FINAL_FILES[..4].iter() {
        let _ = std::fs::remove_file(cut.join(f));
    }
    let out = techdiff(&["sweep", s, "--resume", cut.to_str().unwrap(), "--quiet"]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("ran 18 runs"),
        "resume ran everything again: {stdout}"
    );
    assert_same_results(&whole, &cut);

    // Without --resume an existing sweep folder is refused.
    let again = sweep_to(&sweep, &cut, &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
}

#[test]
fn shards_merge_into_the_unsharded_files() {
    let sobol = format!(
        r#"scenario = "base.toml"
replications = 2
design = "sobol"
samples = 4
bootstrap = 50
seed = 2
metrics = ["securitization_cost@all"]
{TWO_UNIT_PARAMS}"#
    );
    let (tmp, sweep) = setup(&sobol);
    let whole = tmp.path().join("whole");
    ok(&sweep_to(&sweep, &whole, &[]));
    let mut shards = Vec::new();
    for k in 1..=3 {
        let d = tmp.path().join(format!("shard{k}"));
        // --report on a shard says why there is none (it said nothing).
        let out = sweep_to(&sweep, &d, &["--shard", &format!("{k}/3"), "--report"]);
        ok(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("no report for a shard"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            read(&d, "runs.csv").is_none() && read(&d, "report.html").is_none(),
            "a shard writes no final files"
        );
        shards.push(d.to_str().unwrap().to_string());
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    ok(&techdiff(&args));
    assert_same_results(&whole, &merged);
    let sens = String::from_utf8(read(&merged, "sensitivity.csv").unwrap()).unwrap();
    assert!(sens.starts_with("metric,parameter,first_order,"));
    assert_eq!(sens.lines().count(), 1 + 2);
    // A missing shard is refused.
    let partial = techdiff(&[
        "merge",
        &shards[0],
        &shards[1],
        "--out",
        tmp.path().join("p").to_str().unwrap(),
    ]);
    assert_eq!(partial.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("missing"));
}

#[test]
fn morris_sweep_writes_indices_with_bootstrap_intervals() {
    let morris = format!(
        r#"scenario = "base.toml"
replications = 1
design = "morris"
samples = 4
levels = 4
bootstrap = 40
seed = 5
metrics = ["securitization_cost@all"]
{TWO_UNIT_PARAMS}"#
    );
    let (tmp, sweep) = setup(&morris);
    let out = tmp.path().join("m");
    ok(&sweep_to(&sweep, &out, &[]));
    let sens = String::from_utf8(read(&out, "sensitivity.csv").unwrap()).unwrap();
    let mut lines = sens.lines();
    assert_eq!(
        lines.next(),
        Some(
            "metric,parameter,mu,mu_star,sigma,mu_star_ci95_low,mu_star_ci95_high,sigma_ci95_low,sigma_ci95_high"
        )
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').skip(2).map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let (mu_star, sigma) = (r[1], r[2]);
        assert!(r[3] <= mu_star && mu_star <= r[4], "{r:?}");
        assert!(r[5] <= r[6] && sigma >= 0.0, "{r:?}");
    }
}

#[test]
fn a_failing_run_is_recorded_and_the_others_finish() {
    let table = r#"scenario = "base.toml"
replications = 2
design = "table"
table = "rows.csv"
metrics = ["securitization_cost@all"]
[[param]]
name = "rate"
path = "policy.export_control[r].licence_rate"
"#;
    let (tmp, sweep) = setup(table);
    std::fs::write(tmp.path().join("rows.csv"), "rate\n0.2\n1.5\n0.9\n").unwrap();
    let out_dir = tmp.path().join("out");
    let out = sweep_to(&sweep, &out_dir, &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failures = String::from_utf8(read(&out_dir, "failures.csv").unwrap()).unwrap();
    assert_eq!(failures.lines().count(), 1 + 2, "{failures}");
    assert!(failures.contains("1,0,1,1.5,"));
    assert!(failures.contains("licence_rate"));
    assert!(failures.contains("[0, 1]"));
    let runs = String::from_utf8(read(&out_dir, "runs.csv").unwrap()).unwrap();
    assert_eq!(runs.lines().filter(|l| l.contains(",ok,")).count(), 4);
}

#[test]
fn bad_sweep_files_exit_2_with_a_message() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown key",
            "scenario = \"base.toml\"\ncolour = 1\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1]\n",
            &["sweep.toml", "colour"],
        ),
        (
            "sobol needs a power of two",
            "scenario = \"base.toml\"\ndesign = \"sobol\"\nsamples = 12\n[[param]]\npath = \"trust.erosion\"\nmin = 0.0\nmax = 1.0\n",
            &["key `samples`", "power of two", "8 or 16"],
        ),
        // 1 = 2^0, but Saltelli's scheme needs two rows: one suggestion.
        (
            "sobol needs at least 2",
            "scenario = \"base.toml\"\ndesign = \"sobol\"\nsamples = 1\n[[param]]\npath = \"trust.erosion\"\nmin = 0.0\nmax = 1.0\n",
            &["key `samples`", "at least 2", "got 1; try 2"],
        ),
        (
            "empty values",
            "scenario = \"base.toml\"\n[[param]]\npath = \"trust.erosion\"\nvalues = []\n",
            &["key `param[0].values`", "empty"],
        ),
        (
            "zero steps",
            "scenario = \"base.toml\"\n[[param]]\npath = \"trust.erosion\"\nmin = 0.0\nmax = 1.0\nsteps = 0\n",
            &["key `param[0].steps`", "from 1 to"],
        ),
        (
            "oversized grid",
            "scenario = \"base.toml\"\n[[param]]\npath = \"trust.erosion\"\nmin = 0.0\nmax = 1.0\nsteps = 1000\n[[param]]\npath = \"trust.recovery\"\nmin = 0.0\nmax = 1.0\nsteps = 1001\n",
            &["more than 1000000 points"],
        ),
        (
            "unknown metric",
            "scenario = \"base.toml\"\nmetrics = [\"happiness\"]\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1]\n",
            &[
                "key `metrics[0]`",
                "unknown metric `happiness`",
                "securitization_cost",
            ],
        ),
        (
            "unknown design",
            "scenario = \"base.toml\"\ndesign = \"random\"\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1]\n",
            &["key `design`", "grid, zip, table, lhs, sobol, morris"],
        ),
        (
            "missing scenario",
            "scenario = \"nope.toml\"\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1]\n",
            &["key `scenario`", "does not exist"],
        ),
        (
            "bad path",
            "scenario = \"base.toml\"\n[[param]]\npath = \"policy.export_control[zz].cost\"\nvalues = [0.1]\n",
            &["key `param[0].path`", "no element named `zz`"],
        ),
        (
            "zip lengths",
            "scenario = \"base.toml\"\ndesign = \"zip\"\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1, 0.2]\n[[param]]\npath = \"trust.recovery\"\nvalues = [0.1]\n",
            &["key `param[1].values`", "equal length"],
        ),
        (
            "seed as a parameter",
            "scenario = \"base.toml\"\n[[param]]\npath = \"seed\"\nvalues = [1, 2]\n",
            &["key `param[0].path`", "belong to the sweep"],
        ),
    ];
    for (label, text, needles) in cases {
        let (tmp, sweep) = setup(text);
        let out = techdiff(&[
            "sweep",
            sweep.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{label}: {stderr}");
        assert!(!stderr.contains("panicked"), "{label}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{label}: {stderr}"
        );
        for n in *needles {
            assert!(stderr.contains(n), "{label}: `{n}` not in: {stderr}");
        }
        assert!(!tmp.path().join("o").exists(), "{label}: output written");
    }
}

#[test]
fn shipped_sweeps_load_and_lay_out_their_designs() {
    let dir = repo().join("scenarios/sweeps");
    for (name, points) in [
        ("scope_vs_licence", 20),
        ("cooperation_design", 24),
        ("sensitivity", 16 * (6 + 2)),
        ("bench_64_small", 16),
    ] {
        let sweep = techdiff::sweep::Sweep::load(&dir.join(format!("{name}.toml")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.points.len(), points, "{name}");
        if name == "bench_64_small" {
            // The benchmark the 1.8x speed-up target names.
            assert_eq!(sweep.runs(), 64, "{name}");
        }
        for p in 0..sweep.points.len() {
            sweep
                .scenario_at(p)
                .unwrap_or_else(|e| panic!("{name} point {p}: {e}"));
        }
    }
}
