//! Journals that do not fit their sweep (wrong number of values, a point or
//! replication the sweep does not have): resume runs those runs again,
//! merge counts them missing; and merge checks everything before it makes
//! its output folder, which must be new.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// Two points, one replication, eight metrics (the default ones).
const SWEEP: &str = r#"name = "tiny"
scenario = "../base.toml"
replications = 1
design = "grid"
seed = 1
[[param]]
name = "lr"
path = "policy.export_control[controls].licence_rate"
values = [0.1, 0.5]
"#;

/// A temporary folder with `base.toml` (scenarios/bench/small.toml in 3
/// steps, its regime from step 0) and the sweep as `s/tiny.toml`; every command runs in it, with
/// relative paths, as merge finds the sweep file from the shards' manifests.
fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("base.toml"),
        std::fs::read_to_string(repo().join("scenarios/bench/small.toml"))
            .unwrap()
            .replace("steps = 50", "steps = 3")
            // The regime from the start, so the costs are not all zero
            // and differ between the points.
            .replace("start = 5", "start = 0"),
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("s")).unwrap();
    std::fs::write(tmp.path().join("s/tiny.toml"), SWEEP).unwrap();
    tmp
}

/// `techdiff sweep s/tiny.toml EXTRA.. --quiet` in `cwd`.
fn sweep(cwd: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sweep", "s/tiny.toml"];
    args.extend(extra);
    args.push("--quiet");
    techdiff_ok(&args, cwd)
}

/// The unsharded sweep in `whole`, and its two shards in `sh1` and `sh2`.
fn whole_and_shards(cwd: &Path) {
    sweep(cwd, &["--out", "whole"]);
    sweep(cwd, &["--shard", "1/2", "--out", "sh1"]);
    sweep(cwd, &["--shard", "2/2", "--out", "sh2"]);
}

/// The final files that must be identical to the unsharded sweep's.
fn assert_same_results(cwd: &Path, a: &str, b: &str) {
    for f in ["runs.csv", "points.csv", "failures.csv"] {
        let read = |d: &str| std::fs::read(cwd.join(d).join(f)).ok();
        assert!(read(a).is_some(), "{a}/{f} not written");
        assert_eq!(read(a), read(b), "{f} differs between {a} and {b}");
    }
}

/// Exit code 2 and exactly one `error:` line, no panic; returns stderr.
fn refused(out: &Output, label: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{label}: {stderr}");
    assert!(!stderr.contains("panicked"), "{label}: {stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{label}: {stderr}"
    );
    stderr
}

/// A journal line of (`point`, `replication`) with `policy` and
/// `counterfactual` holding `p` and `c` zeros.
fn record(point: usize, replication: u32, p: usize, c: usize) -> String {
    let zeros = |n: usize| vec!["0.0"; n].join(",");
    format!(
        r#"{{"point":{point},"replication":{replication},"policy":[{}],"counterfactual":[{}]}}"#,
        zeros(p),
        zeros(c)
    )
}

/// Records that fit no run of the sweep, each standing in for point 1.
fn bad_records() -> Vec<(&'static str, String)> {
    vec![
        ("short policy", record(1, 0, 1, 8)),
        ("long policy", record(1, 0, 9, 8)),
        ("short counterfactual", record(1, 0, 8, 1)),
        ("point out of range", record(7, 0, 8, 8)),
        ("replication out of range", record(1, 3, 8, 8)),
        (
            "ok but no values",
            r#"{"point":1,"replication":0}"#.to_string(),
        ),
    ]
}

/// Replace the journal line of point 1 in `dir` with `line`.
fn replace_point_1(dir: &Path, line: &str) {
    let journal = dir.join("runs.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains(r#"{"point":1,"#), "{text}");
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.starts_with(r#"{"point":1,"#) {
                line
            } else {
                l
            }
        })
        .collect();
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
}

/// Every file under `dir` (relative path, bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    files
}

#[test]
fn resume_runs_again_a_record_that_does_not_fit() {
    let tmp = setup();
    let cwd = tmp.path();
    sweep(cwd, &["--out", "whole"]);
    for (i, (label, line)) in bad_records().into_iter().enumerate() {
        let dir = format!("cut{i}");
        sweep(cwd, &["--out", &dir]);
        replace_point_1(&cwd.join(&dir), &line);
        for f in ["runs.csv", "points.csv", "failures.csv"] {
            std::fs::remove_file(cwd.join(&dir).join(f)).unwrap();
        }
        let out = techdiff_in(&["sweep", "s/tiny.toml", "--resume", &dir, "--quiet"], cwd);
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("ran 1 runs"), "{label}: {stdout}");
        assert_same_results(cwd, "whole", &dir);
        // The journal keeps the two runs only, each with its 8 values.
        let journal = std::fs::read_to_string(cwd.join(&dir).join("runs.jsonl")).unwrap();
        let mut keys: Vec<(u64, u64, usize)> = journal
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let n = v["policy"].as_array().map_or(0, Vec::len);
                (
                    v["point"].as_u64().unwrap(),
                    v["replication"].as_u64().unwrap(),
                    n,
                )
            })
            .collect();
        keys.sort();
        assert_eq!(keys, [(0, 0, 8), (1, 0, 8)], "{label}: {journal}");
    }
}

#[test]
fn merge_refuses_a_shard_journal_with_a_record_that_does_not_fit() {
    let tmp = setup();
    let cwd = tmp.path();
    whole_and_shards(cwd);
    let good = std::fs::read(cwd.join("sh2/runs.jsonl")).unwrap();
    let mut cases = bad_records();
    cases.push(("garbage", "not json at all".to_string()));
    for (i, (label, line)) in cases.into_iter().enumerate() {
        replace_point_1(&cwd.join("sh2"), &line);
        let out_dir = format!("merged{i}");
        let out = techdiff_in(&["merge", "sh1", "sh2", "--out", &out_dir], cwd);
        let stderr = refused(&out, label);
        assert!(
            stderr.contains("1 of 2 runs are missing"),
            "{label}: {stderr}"
        );
        assert!(!cwd.join(&out_dir).exists(), "{label}: {out_dir} made");
        std::fs::write(cwd.join("sh2/runs.jsonl"), &good).unwrap();
    }
}

#[test]
fn merge_drops_a_bad_record_beside_the_good_one() {
    let tmp = setup();
    let cwd = tmp.path();
    whole_and_shards(cwd);
    let journal = cwd.join("sh2/runs.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    for (_, line) in bad_records() {
        text = text + &line + "\n";
    }
    std::fs::write(&journal, text).unwrap();
    techdiff_ok(&["merge", "sh1", "sh2", "--out", "merged"], cwd);
    assert_same_results(cwd, "whole", "merged");
}

#[test]
fn merge_of_one_shard_of_two_makes_no_folder() {
    let tmp = setup();
    let cwd = tmp.path();
    sweep(cwd, &["--shard", "1/2", "--out", "sh1"]);
    let out = techdiff_in(&["merge", "sh1", "--out", "merged"], cwd);
    let stderr = refused(&out, "one shard");
    assert!(stderr.contains("1 of 2 runs are missing"), "{stderr}");
    assert!(stderr.contains("sh1"), "{stderr}");
    assert!(stderr.contains("every shard"), "{stderr}");
    assert!(!cwd.join("merged").exists());
}

#[test]
fn merge_refuses_an_out_folder_that_holds_results() {
    let tmp = setup();
    let cwd = tmp.path();
    whole_and_shards(cwd);
    // A complete sweep folder of another sweep.
    std::fs::write(
        cwd.join("s/other.toml"),
        SWEEP
            .replace("tiny", "other")
            .replace("[0.1, 0.5]", "[0.2, 0.3, 0.4]"),
    )
    .unwrap();
    techdiff_ok(&["sweep", "s/other.toml", "--out", "other", "--quiet"], cwd);
    // The results of a single run.
    techdiff_ok(&["run", "base.toml", "--out", "single", "--quiet"], cwd);
    assert!(cwd.join("single/manifest.json").exists());
    for (label, out_dir) in [
        ("another sweep", "other"),
        ("a run", "single"),
        ("an input shard", "sh1"),
        ("an input shard, spelt otherwise", "./sh2/"),
        ("the same sweep", "whole"),
    ] {
        let before = snapshot(&cwd.join(out_dir));
        let out = techdiff_in(&["merge", "sh1", "sh2", "--out", out_dir], cwd);
        let stderr = refused(&out, label);
        assert!(stderr.contains("command line"), "{label}: {stderr}");
        assert!(stderr.contains(out_dir), "{label}: {stderr}");
        assert!(
            snapshot(&cwd.join(out_dir)) == before,
            "{label}: {out_dir} changed"
        );
    }
}

/// A merge that stops after writing its journal (here runs.csv cannot be
/// written: a folder has its name) is named as such when merged into
/// again, with the command that finishes it; that command then gives the
/// unsharded sweep's files.
#[test]
fn a_merge_stopped_part_way_is_named_and_finished_by_resume() {
    let tmp = setup();
    let cwd = tmp.path();
    whole_and_shards(cwd);
    std::fs::create_dir_all(cwd.join("merged/runs.csv")).unwrap();
    let out = techdiff_in(&["merge", "sh1", "sh2", "--out", "merged"], cwd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(stderr.contains("merged/runs.csv"), "{stderr}");
    std::fs::remove_dir(cwd.join("merged/runs.csv")).unwrap();
    let again = techdiff_in(&["merge", "sh1", "sh2", "--out", "merged"], cwd);
    let stderr = refused(&again, "merge into a stopped merge");
    assert!(
        stderr.contains("merged holds a merge that stopped part-way")
            && stderr.contains("`techdiff sweep s/tiny.toml --resume merged`"),
        "{stderr}"
    );
    sweep(cwd, &["--resume", "merged"]);
    assert_same_results(cwd, "whole", "merged");
}

#[test]
fn both_shards_merge_into_the_unsharded_files() {
    let tmp = setup();
    let cwd = tmp.path();
    whole_and_shards(cwd);
    // An existing empty folder is a fresh one.
    std::fs::create_dir(cwd.join("merged")).unwrap();
    techdiff_ok(&["merge", "sh1", "sh2", "--out", "merged"], cwd);
    assert_same_results(cwd, "whole", "merged");
}

/// Merge finds the base scenario from any working folder: the shards'
/// manifests keep the sweep file's folder as an absolute path (the file
/// was named relative to where the sweep ran).
#[test]
fn merge_works_from_another_folder() {
    let tmp = setup();
    let cwd = tmp.path();
    whole_and_shards(cwd);
    let elsewhere = cwd.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    techdiff_ok(
        &["merge", "../sh1", "../sh2", "--out", "../merged"],
        &elsewhere,
    );
    assert_same_results(cwd, "merged", "whole");
}

/// A run's results folder is named as such, not as "a different sweep",
/// by --resume, merge and sweep --out (merge read it as an empty sweep
/// file and named no file at all).
#[test]
fn a_run_folder_is_not_taken_for_a_sweep() {
    let tmp = setup();
    let cwd = tmp.path();
    techdiff_ok(&["run", "base.toml", "--out", "single", "--quiet"], cwd);
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "resume",
            &["sweep", "s/tiny.toml", "--resume", "single", "--quiet"],
            &["single/manifest.json", "not a sweep's manifest"],
        ),
        (
            "merge",
            &["merge", "single", "--out", "merged"],
            &["single/manifest.json", "not a sweep's manifest"],
        ),
        (
            "sweep --out",
            &["sweep", "s/tiny.toml", "--out", "single", "--quiet"],
            &["command line", "single already holds results"],
        ),
    ];
    for (label, args, parts) in cases {
        let stderr = refused(&techdiff_in(args, cwd), label);
        for p in parts {
            assert!(stderr.contains(p), "{label}: `{p}` not in {stderr}");
        }
        assert!(!stderr.contains("different sweep"), "{label}: {stderr}");
    }
    assert!(!cwd.join("merged").exists());
}

/// A shard's manifest whose `shard` is not K/N with 1 <= K <= N is named,
/// with the key and what is allowed, by resume and by merge (it was
/// reported as a mistake on the command line).
#[test]
fn a_manifest_with_a_bad_shard_is_named() {
    let tmp = setup();
    let cwd = tmp.path();
    let (manifest, text) = shards_and_first_manifest(cwd);
    assert!(text.contains(r#""shard": "1/2""#), "{text}");
    std::fs::write(
        &manifest,
        text.replace(r#""shard": "1/2""#, r#""shard": "0/2""#),
    )
    .unwrap();
    resume_and_merge_refused(
        cwd,
        &["sh1/manifest.json", "key `shard`", "1 <= K <= N", "`0/2`"],
    );
}

/// The sweep's two shards in `sh1` and `sh2`; the path and text of
/// `sh1/manifest.json`.
fn shards_and_first_manifest(cwd: &Path) -> (PathBuf, String) {
    sweep(cwd, &["--shard", "1/2", "--out", "sh1"]);
    sweep(cwd, &["--shard", "2/2", "--out", "sh2"]);
    let manifest = cwd.join("sh1/manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    (manifest, text)
}

/// `sweep --resume sh1` and `merge sh1 sh2` are both refused, each naming
/// every one of `expect`, and merge makes no folder.
fn resume_and_merge_refused(cwd: &Path, expect: &[&str]) {
    let cases: [(&str, &[&str]); 2] = [
        (
            "resume",
            &["sweep", "s/tiny.toml", "--resume", "sh1", "--quiet"],
        ),
        ("merge", &["merge", "sh1", "sh2", "--out", "merged"]),
    ];
    for (label, args) in cases {
        let stderr = refused(&techdiff_in(args, cwd), label);
        for p in expect {
            assert!(stderr.contains(p), "{label}: `{p}` not in {stderr}");
        }
    }
    assert!(!cwd.join("merged").exists(), "merge made its folder");
}

/// A folder run by a build whose draws differ (another results
/// generation, or a manifest from before the key existed, which is
/// generation 1) is refused by resume and merge, naming the file, the key
/// and the generations: its replications cannot be mixed with this
/// build's.
#[test]
fn a_folder_of_another_results_generation_is_refused() {
    let tmp = setup();
    let cwd = tmp.path();
    let (manifest, text) = shards_and_first_manifest(cwd);
    let ours = format!(r#""results_generation": {}"#, techdiff::RESULTS_GENERATION);
    assert!(text.contains(&ours), "{text}");
    // Without the key (a manifest from before it existed), and from a
    // later build.
    for (edit, theirs) in [
        (text.replace(&format!("{ours},"), ""), 1),
        (text.replace(&ours, r#""results_generation": 99"#), 99),
    ] {
        std::fs::write(&manifest, &edit).unwrap();
        let this = format!("this build's (generation {})", techdiff::RESULTS_GENERATION);
        let theirs = format!("results generation {theirs} ");
        resume_and_merge_refused(
            cwd,
            &[
                "sh1/manifest.json",
                "key `results_generation`",
                &this,
                &theirs,
            ],
        );
    }
    // The manifest as written resumes (nothing left to run) and merges.
    std::fs::write(&manifest, &text).unwrap();
    techdiff_ok(
        &[
            "sweep",
            "s/tiny.toml",
            "--shard",
            "1/2",
            "--resume",
            "sh1",
            "--quiet",
        ],
        cwd,
    );
    techdiff_ok(&["merge", "sh1", "sh2", "--out", "merged"], cwd);
}
