//! The command line end to end: determinism across thread counts, seeds,
//! the default scenario and its output folder.

mod common;

use std::path::Path;

use common::*;

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
}

#[test]
fn same_seed_same_bytes_at_any_thread_count_and_other_seed_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = repo().join("scenarios/tightening.toml");
    let scenario = scenario.to_str().unwrap();
    let mut dirs = Vec::new();
    for (name, threads, seed) in [
        ("t1", "1", "4"),
        ("t2", "2", "4"),
        ("t2b", "2", "4"),
        ("s5", "2", "5"),
    ] {
        let out = tmp.path().join(name);
        techdiff_ok(
            &[
                "run",
                scenario,
                "--reps",
                "3",
                "--seed",
                seed,
                "--threads",
                threads,
                "--set",
                "steps=6",
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ],
            tmp.path(),
        );
        dirs.push(out);
    }
    for file in ["timeseries.csv", "countries.csv", "summary.json"] {
        let one = read(&dirs[0], file);
        assert!(!one.is_empty());
        assert_eq!(
            one,
            read(&dirs[1], file),
            "{file} differs between 1 and 2 threads"
        );
        assert_eq!(one, read(&dirs[2], file), "{file} differs between two runs");
        assert_ne!(
            one,
            read(&dirs[3], file),
            "{file} is the same for another seed"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(&dirs[0], "manifest.json")).unwrap();
    assert_eq!(manifest["seed"], 4);
    assert_eq!(manifest["threads"], 1);
    assert_eq!(manifest["replications"], 3);
    assert_eq!(manifest["scenario"]["steps"], 6);
}

/// The manifest names the revision the binary was built from, marked
/// `-modified` when what is compiled in had uncommitted changes (build.rs),
/// so that no result is credited to a commit it did not come from.
/// Checked where the crate is a git checkout.
#[test]
fn the_manifest_names_the_revision_built_from() {
    let tmp = tempfile::tempdir().unwrap();
    write_small_base(tmp.path());
    let out = tmp.path().join("out");
    techdiff_ok(
        &[
            "run",
            "base.toml",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        tmp.path(),
    );
    let manifest: serde_json::Value = serde_json::from_slice(&read(&out, "manifest.json")).unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) {
        let mut args = vec!["status", "--porcelain", "--untracked-files=all", "--"];
        args.extend(env!("TECHDIFF_BUILD_SOURCES").split(':'));
        let status = git(&args).expect("git status runs where git rev-parse does");
        let want = if status.is_empty() {
            head
        } else {
            format!("{head}-modified")
        };
        assert_eq!(manifest["git_revision"], want.as_str());
    }
}

/// The outputs do not go through the C library's maths (README,
/// "Reproducibility"). glibc picks its `exp`, `log`, `cos` and `pow` by CPU,
/// and `GLIBC_TUNABLES` switching off its AVX2 and FMA paths changes the
/// last bits of some results; a build that used them (before 6d74df9)
/// gave small.toml different GDP-weighted series from step 0 this way
/// (synthetic GDP draws). Where glibc is not the C library the variable is
/// ignored and the two runs are the same program.
#[test]
fn same_bytes_when_the_c_library_takes_other_cpu_code_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = repo().join("scenarios/bench/small.toml");
    let mut dirs = Vec::new();
    for (name, tunables) in [
        ("default", None),
        ("no_fma", Some("glibc.cpu.hwcaps=-AVX2,-FMA")),
    ] {
        let out = tmp.path().join(name);
        let mut cmd = std::process::Command::new(bin());
        cmd.args([
            "run",
            scenario.to_str().unwrap(),
            "--set",
            "steps=8",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .current_dir(tmp.path());
        if let Some(t) = tunables {
            cmd.env("GLIBC_TUNABLES", t);
        }
        let res = cmd.output().unwrap();
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        dirs.push(out);
    }
    for file in ["timeseries.csv", "countries.csv", "summary.json"] {
        let a = read(&dirs[0], file);
        assert!(!a.is_empty());
        assert!(
            a == read(&dirs[1], file),
            "{file} depends on glibc's CPU code paths"
        );
    }
}

#[test]
fn no_arguments_runs_the_embedded_default_scenario_from_any_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = techdiff_ok(&[], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tightening"), "{stdout}");
    assert!(stdout.contains("securitization cost"), "{stdout}");
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("results/tightening"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
    let dir = runs[0].as_ref().unwrap().path();
    for file in [
        "timeseries.csv",
        "countries.csv",
        "summary.json",
        "manifest.json",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .collect();
    assert!(leftovers.is_empty());
    // The long format's header and the summary's paired cost.
    let ts = String::from_utf8(read(&dir, "timeseries.csv")).unwrap();
    assert!(ts.starts_with("variant,replication,step,year,group,metric,value\n"));
    assert!(ts.contains("policy,0,0,2019,all,log_productivity,"));
    assert!(ts.contains(",income:low,frontier_gap_gdp_weighted,"));
    // countries.csv carries each country's coordinates (capital lat, lon).
    let countries = String::from_utf8(read(&dir, "countries.csv")).unwrap();
    assert!(countries.starts_with(
        "variant,replication,code,name,bloc,income,log_productivity,growth,frontier_gap,coinvention_share,adoption_share,retaliations_opened,lat,lon\n"
    ));
    let usa = countries
        .lines()
        .find(|l| l.starts_with("policy,0,USA,"))
        .unwrap();
    assert!(usa.ends_with(",38.8895,-77.032"), "{usa}");
    let summary: serde_json::Value = serde_json::from_slice(&read(&dir, "summary.json")).unwrap();
    let cost = &summary["securitization_cost"]["income:low"];
    assert!(cost["mean"].as_f64().unwrap() > 0.0);
    assert!(cost["ci95_low"].as_f64().unwrap() <= cost["mean"].as_f64().unwrap());
}

/// The bench CSV is a log: a second `techdiff bench` adds its rows below
/// the first one's, unchanged; a file with other columns is refused before
/// anything is measured, and left as it was.
#[test]
fn bench_adds_rows_to_its_csv_and_refuses_a_foreign_one() {
    let tmp = tempfile::tempdir().unwrap();
    let csv_path = tmp.path().join("log.csv");
    let small = repo().join("scenarios/bench/small.toml");
    let args = |runs: &'static str| -> Vec<String> {
        [
            "bench",
            small.to_str().unwrap(),
            "--runs",
            runs,
            "--set",
            "steps=2",
            "--csv",
            csv_path.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |runs| {
        let a = args(runs);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        techdiff_ok(&a, tmp.path())
    };
    run("1");
    let first = std::fs::read_to_string(&csv_path).unwrap();
    let out = run("2");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 row added to"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let both = std::fs::read_to_string(&csv_path).unwrap();
    assert!(both.starts_with(&first), "{first}\n---\n{both}");
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let runs_col = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "runs")
        .unwrap();
    let runs: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[runs_col].to_string())
        .collect();
    assert_eq!(runs, ["1", "2"]);

    let foreign = "a,b\n1,2\n";
    std::fs::write(&csv_path, foreign).unwrap();
    let a = args("1");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = techdiff_in(&a, tmp.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}: its columns are not", csv_path.display()))
            && err.contains("--csv"),
        "{err}"
    );
    assert!(
        !err.contains("measuring"),
        "measured before refusing: {err}"
    );
    assert_eq!(std::fs::read_to_string(&csv_path).unwrap(), foreign);
}

/// `techdiff bench`: a table on stdout and one CSV row per scenario, in
/// the order given, whose work figures and rates agree with each other
/// and with the scenario, and which says which build measured.
#[test]
fn bench_measures_each_scenario_and_writes_one_csv_row_each() {
    let tmp = tempfile::tempdir().unwrap();
    let csv_path = tmp.path().join("bench.csv");
    let small = repo().join("scenarios/bench/small.toml");
    let policy = repo().join("scenarios/bench/medium_policy.toml");
    let (small, policy) = (small.to_str().unwrap(), policy.to_str().unwrap());
    let out = techdiff_ok(
        &[
            "bench",
            small,
            policy,
            "--runs",
            "2",
            "--threads",
            "1",
            "--set",
            "steps=3",
            "--csv",
            csv_path.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("small")
            && stdout.contains("medium_policy")
            && stdout.contains(&format!("{build} build"))
            && stdout.contains("CPU s")
            && stdout.contains("cores busy"),
        "{stdout}"
    );
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "scenario",
            "file",
            "settings",
            "countries",
            "innovations",
            "steps",
            "runs",
            "median_seconds",
            "min_seconds",
            "max_seconds",
            "median_cpu_seconds",
            "median_system_seconds",
            "cores_busy",
            "steps_per_second",
            "adoptions_per_second",
            "country_innovation_steps_per_second",
            "adoptions",
            "country_innovation_steps",
            "peak_rss_mib",
            "threads",
            "build",
            "measured_at",
            "git_revision",
            "cpu",
            "run_seconds",
            "run_cpu_seconds",
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert!(
        stdout.contains(&format!(
            "2 rows added to {} (0 before)",
            csv_path.display()
        )),
        "{stdout}"
    );
    for (row, (name, file, countries)) in rows
        .iter()
        .zip([("small", small, 50.0), ("medium_policy", policy, 200.0)])
    {
        let get = |key: &str| &row[header.iter().position(|h| h == key).unwrap()];
        let num = |key: &str| get(key).parse::<f64>().unwrap();
        assert_eq!(
            (get("scenario"), get("file"), get("settings"), get("build")),
            (name, file, "steps=3", build)
        );
        assert_eq!(
            (num("countries"), num("steps"), num("runs"), num("threads")),
            (countries, 3.0, 2.0, 1.0)
        );
        let (med, min, max) = (
            num("median_seconds"),
            num("min_seconds"),
            num("max_seconds"),
        );
        assert!(0.0 < min && min <= med && med <= max, "{row:?}");
        // Every timed run is kept; the median and the extremes are theirs.
        let mut runs: Vec<f64> = get("run_seconds")
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        let walls = runs.clone();
        runs.sort_by(f64::total_cmp);
        assert_eq!(runs.len(), 2, "{row:?}");
        assert_eq!((runs[0], runs[1]), (min, max), "{row:?}");
        assert_eq!(med, (runs[0] + runs[1]) / 2.0, "{row:?}");
        // Each run's CPU time (every thread's; the kernel counts running
        // threads to within a tick), the median of it and of each run's
        // CPU over wall time. One worker thread: about one core busy,
        // never the runs before counted again.
        let cpus: Vec<f64> = get("run_cpu_seconds")
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(cpus.len(), 2, "{row:?}");
        assert!(cpus.iter().all(|&c| c >= 0.0), "{row:?}");
        assert!(
            cpus.iter().sum::<f64>() <= 1.5 * walls.iter().sum::<f64>() + 0.02,
            "{row:?}"
        );
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
        assert!(
            close(num("median_cpu_seconds"), (cpus[0] + cpus[1]) / 2.0),
            "{row:?}"
        );
        let busy = (cpus[0] / walls[0] + cpus[1] / walls[1]) / 2.0;
        assert!(close(num("cores_busy"), busy), "{row:?}");
        let system = num("median_system_seconds");
        assert!(
            0.0 <= system && system <= num("median_cpu_seconds"),
            "{row:?}"
        );
        if name == "medium_policy" {
            // Long enough that the kernel cannot miss it all.
            assert!(cpus.iter().sum::<f64>() > 0.0, "{row:?}");
        }
        assert!(
            chrono::DateTime::parse_from_rfc3339(get("measured_at")).is_ok(),
            "{row:?}"
        );
        assert!(!get("cpu").is_empty(), "{row:?}");
        // Rates are the whole pair's work (both variants' steps) over the
        // median run.
        assert!(close(num("steps_per_second") * med, 2.0 * 3.0), "{row:?}");
        assert!(
            close(num("adoptions_per_second") * med, num("adoptions")),
            "{row:?}"
        );
        assert!(
            close(
                num("country_innovation_steps_per_second") * med,
                num("country_innovation_steps")
            ),
            "{row:?}"
        );
        // Country-innovation-steps: countries x innovations in existence,
        // summed over both variants' steps; innovations only accumulate,
        // so the sum lies between one and three steps' worth of the two
        // variants' final counts (`innovations` is their mean).
        assert!(
            num("adoptions") > 0.0 && num("innovations") > 0.0,
            "{row:?}"
        );
        let last = countries * 2.0 * num("innovations");
        let cis = num("country_innovation_steps");
        assert!(last <= cis && cis <= 3.0 * last, "{row:?}");
        assert!(num("peak_rss_mib") > 0.0, "{row:?}");
    }
}

/// A quick sweep for `techdiff bench --sweep`: 2 points x 2 replications
/// of small.toml at 6 steps, in `dir` (as `s.toml` and `base.toml`).
fn write_tiny_sweep(dir: &Path) {
    write_small_base(dir);
    std::fs::write(
        dir.join("s.toml"),
        r#"name = "tiny"
scenario = "base.toml"
replications = 2
design = "grid"
metrics = ["securitization_cost@all"]
[[param]]
path = "policy.export_control[controls].licence_rate"
values = [0.2, 0.8]
"#,
    )
    .unwrap();
}

/// `techdiff bench --sweep`: the sweep's speed-up from one thread to
/// `--threads`, timed in alternating rounds; a table on stdout and one row
/// in the sweep CSV whose medians, ratios and rates follow from its round
/// times. With no scenario named, no scenario is measured.
#[test]
fn bench_times_a_sweep_at_one_and_more_threads_in_alternating_rounds() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_sweep(tmp.path());
    let csv_path = tmp.path().join("sweeps.csv");
    let out = techdiff_ok(
        &[
            "bench",
            "--sweep",
            "s.toml",
            "--runs",
            "3",
            "--threads",
            "2",
            "--sweep-csv",
            csv_path.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("tiny")
            && stdout.contains("2 threads s")
            && stdout.contains("speed-up")
            && stdout.contains("1 row added to"),
        "{stdout}"
    );
    assert!(
        stderr.contains("measuring sweep s.toml (4 runs at 1 and 2 threads, 3 rounds)"),
        "{stderr}"
    );
    assert!(!stderr.contains("scenarios/bench"), "{stderr}");
    assert!(
        !tmp.path().join("results").exists(),
        "a scenario CSV was written"
    );

    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    let get = |name: &str| -> String {
        let at = header.iter().position(|h| h == name).expect(name);
        rows[0][at].to_string()
    };
    let num = |name: &str| -> f64 { get(name).parse().expect(name) };
    let list = |name: &str| -> Vec<f64> {
        get(name)
            .split(' ')
            .map(|x| x.parse().expect(name))
            .collect()
    };
    assert_eq!(
        (get("sweep"), get("runs"), get("rounds"), get("threads")),
        ("tiny".into(), "4".into(), "3".into(), "2".into())
    );
    let (one, many) = (
        list("round_seconds_1_thread"),
        list("round_seconds_threads"),
    );
    assert_eq!((one.len(), many.len()), (3, 3));
    assert!(one.iter().chain(&many).all(|&t| t > 0.0));
    let median3 = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[1]
    };
    let ratios: Vec<f64> = one.iter().zip(&many).map(|(a, b)| a / b).collect();
    assert_eq!(num("median_seconds_1_thread"), median3(&one));
    assert_eq!(num("median_seconds_threads"), median3(&many));
    assert_eq!(num("speedup_median"), median3(&ratios));
    assert_eq!(
        num("speedup_min"),
        ratios.iter().copied().fold(f64::INFINITY, f64::min)
    );
    assert_eq!(
        num("speedup_max"),
        ratios.iter().copied().fold(0.0, f64::max)
    );
    assert_eq!(num("runs_per_second"), 4.0 / median3(&many));
}

/// Bad input to `techdiff bench --sweep` stops it before anything is
/// measured, with exit code 2 and a message naming what to fix.
#[test]
fn bench_refuses_a_bad_sweep_before_measuring() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_sweep(tmp.path());
    let refused = |args: &[&str], wanted: &[&str]| {
        let out = techdiff_in(args, tmp.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for w in wanted {
            assert!(err.contains(w), "{args:?}: {err}");
        }
        assert!(!err.contains("measuring"), "{args:?}: {err}");
    };
    refused(&["bench", "--sweep", "missing.toml"], &["missing.toml"]);
    refused(
        &["bench", "--sweep", "s.toml", "--threads", "1"],
        &["command line", "--threads", "at least 2"],
    );
    let to_log = |csv| {
        [
            "bench",
            "--sweep",
            "s.toml",
            "--threads",
            "2",
            "--sweep-csv",
            csv,
        ]
    };
    refused(&to_log("."), &["--sweep-csv", "is a folder"]);
    // A sweep CSV is added to only when it has the sweep columns (a
    // scenario bench CSV has others).
    let foreign = "scenario,file\nsmall,x\n";
    std::fs::write(tmp.path().join("log.csv"), foreign).unwrap();
    refused(&to_log("log.csv"), &["log.csv: its columns are not"]);
    refused(
        &[
            "bench",
            "--sweep",
            "s.toml",
            "--threads",
            "2",
            "--csv",
            "x.csv",
        ],
        &["--csv", "--sweep-csv"],
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("log.csv")).unwrap(),
        foreign
    );
}
