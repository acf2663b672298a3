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
