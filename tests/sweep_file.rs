//! Sweep files the sweep used to accept and then ran wrongly: a table CSV
//! with a column twice, two parameters on one scenario key, parameter names
//! that clash with the columns the sweep writes (or are empty), a metric
//! listed twice, and a parameter path that is no key of the scenario. Each
//! must give exit code 2, one `error:` line naming the file, where in it,
//! the key and what is allowed, and write nothing. Controls: a valid table
//! sweep with two parameters still runs, and a value out of range at one
//! point still fails only that point's runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A folder with `base.toml` (scenarios/bench/small.toml cut to 3 steps)
/// and `s/`, where the sweep file and its table go (`scenario =
/// "../base.toml"`).
fn setup(sweep: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(repo().join("scenarios/bench/small.toml")).unwrap();
    assert_eq!(base.matches("steps = 50").count(), 1);
    std::fs::write(
        tmp.path().join("base.toml"),
        base.replace("steps = 50", "steps = 3"),
    )
    .unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("sweep.toml"), sweep).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    (tmp, dir.join("sweep.toml"))
}

/// `techdiff sweep SWEEP --out OUT --quiet`, in the temp folder.
fn sweep_to(tmp: &Path, sweep: &Path, out: &Path) -> Output {
    techdiff_in(
        &[
            "sweep",
            sweep.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        tmp,
    )
}

/// The line of `FILE:LINE:COL:` right after an occurrence of `file`.
fn line_after(text: &str, file: &str) -> Option<usize> {
    text.match_indices(file).find_map(|(i, _)| {
        let rest = text[i + file.len()..].strip_prefix(':')?;
        let mut parts = rest.splitn(3, ':');
        let line = parts.next()?.parse().ok()?;
        parts.next()?.parse::<usize>().ok()?;
        parts.next()?;
        Some(line)
    })
}

/// The sweep is refused: exit 2, stderr one `error:` line with every
/// needle, `file:line:COL:`, no panic, and no output folder.
fn assert_refused(
    label: &str,
    sweep: &str,
    files: &[(&str, &str)],
    needles: &[&str],
    at: (&str, usize),
) -> String {
    let (tmp, path) = setup(sweep, files);
    let out_dir = tmp.path().join("out");
    let out = sweep_to(tmp.path(), &path, &out_dir);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{label}: {err}");
    assert!(!err.contains("panicked"), "{label}: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{label}: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{label}: {err}");
    for n in needles {
        assert!(err.contains(n), "{label}: `{n}` not in: {err}");
    }
    assert_eq!(
        line_after(&err, at.0),
        Some(at.1),
        "{label}: expected `{}:{}:COL:` in: {err}",
        at.0,
        at.1
    );
    assert!(
        !out_dir.exists(),
        "{label}: the refused sweep created {}",
        out_dir.display()
    );
    err
}

/// A table sweep over `e` (trust.erosion) and `r` (trust.recovery).
const TABLE: &str = r#"scenario = "../base.toml"
replications = 1
design = "table"
table = "rows.csv"
metrics = ["securitization_cost"]

[[param]]
name = "e"
path = "trust.erosion"

[[param]]
name = "r"
path = "trust.recovery"
"#;

/// One parameter, named `NAME`, over trust.erosion.
fn named(name: &str, metrics: &str) -> String {
    format!(
        "scenario = \"../base.toml\"\nreplications = 1\nmetrics = {metrics}\n\n[[param]]\nname = \"{name}\"\npath = \"trust.erosion\"\nvalues = [0.1]\n"
    )
}

#[test]
fn a_table_column_twice_is_refused() {
    assert_refused(
        "e,e,r",
        TABLE,
        &[("rows.csv", "e,e,r\n0.1,0.2,0.3\n")],
        &["rows.csv:1:3:", "column `e`", "twice", "one column"],
        ("rows.csv", 1),
    );
}

#[test]
fn two_params_on_one_key_are_refused() {
    let sweep = r#"scenario = "../base.toml"
replications = 1
metrics = ["securitization_cost"]

[[param]]
path = "trust.erosion"
values = [0.1]

[[param]]
name = "again"
path = "trust.erosion"
values = [0.2]
"#;
    assert_refused(
        "same path",
        sweep,
        &[],
        &[
            "sweep.toml",
            "key `param[1].path`",
            "same scenario key as param[0]",
            "one parameter only",
        ],
        ("sweep.toml", 11),
    );
}

#[test]
fn two_params_on_one_key_by_name_and_index_are_refused() {
    let sweep = r#"scenario = "../base.toml"
replications = 1
metrics = ["securitization_cost"]

[[param]]
name = "rate"
path = "policy.export_control[controls].licence_rate"
values = [0.1]

[[param]]
name = "rate0"
path = "policy.export_control[0].licence_rate"
values = [0.2]
"#;
    assert_refused(
        "[controls] and [0]",
        sweep,
        &[],
        &[
            "sweep.toml",
            "key `param[1].path`",
            "same scenario key as param[0] (`rate`, path `policy.export_control[controls].licence_rate`)",
            "one parameter only",
        ],
        ("sweep.toml", 12),
    );
}

#[test]
fn a_param_inside_another_params_key_is_refused() {
    let sweep = r#"scenario = "../base.toml"
replications = 1
metrics = ["securitization_cost"]

[[param]]
path = "trust"
values = [{ recovery = 0.2 }]

[[param]]
path = "trust.erosion"
values = [0.2]
"#;
    assert_refused(
        "trust and trust.erosion",
        sweep,
        &[],
        &[
            "sweep.toml",
            "key `param[1].path`",
            "inside `trust`",
            "one parameter only",
        ],
        ("sweep.toml", 10),
    );
}

/// Each column the sweep writes itself, as a parameter's name.
#[test]
fn reserved_column_names_are_refused() {
    for name in ["point", "replication", "seed", "status", "error", "runs_ok"] {
        let key = format!("`{name}`");
        assert_refused(
            name,
            &named(name, "[\"securitization_cost\"]"),
            &[],
            &[
                "sweep.toml",
                "key `param[0].name`",
                &key,
                "column the sweep writes",
                "point, replication, seed, status, error, runs_ok",
            ],
            ("sweep.toml", 6),
        );
    }
}

#[test]
fn the_reserved_list_is_the_one_the_library_checks() {
    assert_eq!(
        techdiff::sweep::RESERVED_COLUMNS,
        ["point", "replication", "seed", "status", "error", "runs_ok"]
    );
}

#[test]
fn an_empty_param_name_is_refused() {
    assert_refused(
        "empty name",
        &named("", "[\"securitization_cost\"]"),
        &[],
        &["sweep.toml", "key `param[0].name`", "non-empty name"],
        ("sweep.toml", 6),
    );
}

#[test]
fn a_param_named_as_a_metric_column_is_refused() {
    for name in ["securitization_cost@all", "securitization_cost@all:mean"] {
        assert_refused(
            name,
            &named(name, "[\"securitization_cost\"]"),
            &[],
            &[
                "sweep.toml",
                "key `param[0].name`",
                "metric `securitization_cost@all`",
                "`metric@group`",
            ],
            ("sweep.toml", 6),
        );
    }
    // The default metrics count too.
    let sweep = "scenario = \"../base.toml\"\nreplications = 1\n\n[[param]]\nname = \"securitization_cost@bloc:A\"\npath = \"trust.erosion\"\nvalues = [0.1]\n";
    assert_refused(
        "default metric",
        sweep,
        &[],
        &[
            "sweep.toml",
            "key `param[0].name`",
            "metric `securitization_cost@bloc:A`",
        ],
        ("sweep.toml", 5),
    );
}

#[test]
fn a_metric_twice_is_refused() {
    assert_refused(
        "securitization_cost and securitization_cost@all",
        &named(
            "e",
            "[\"securitization_cost\", \"securitization_cost@all\"]",
        ),
        &[],
        &[
            "sweep.toml",
            "key `metrics[1]`",
            "`securitization_cost@all`",
            "as metrics[0]",
            "each metric once",
        ],
        ("sweep.toml", 3),
    );
}

#[test]
fn an_unknown_key_in_a_path_is_refused_as_set_refuses_it() {
    let sweep = "scenario = \"../base.toml\"\nreplications = 1\n\n[[param]]\nname = \"e\"\npath = \"trust.erosionn\"\nvalues = [0.1, 0.2]\n";
    let err = assert_refused(
        "trust.erosionn",
        sweep,
        &[],
        &[
            "sweep.toml",
            "key `param[0].path`",
            "trust.erosionn",
            "unknown field `erosionn`",
            "expected one of",
            "`erosion`",
        ],
        ("sweep.toml", 6),
    );
    // `run --set` says the same of the key.
    let (tmp, _) = setup("", &[]);
    let out = techdiff_in(
        &[
            "run",
            "base.toml",
            "--set",
            "trust.erosionn=0.1",
            "--out",
            "run",
            "--quiet",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let set_err = String::from_utf8_lossy(&out.stderr);
    let what = |e: &str| -> String {
        let i = e.find("unknown field").expect("unknown field");
        e[i..]
            .split(" (value set")
            .next()
            .unwrap()
            .trim_end()
            .to_string()
    };
    assert_eq!(what(&err), what(&set_err), "{err}\n{set_err}");
}

#[test]
fn an_unknown_key_inside_a_table_value_is_refused() {
    let sweep = "scenario = \"../base.toml\"\nreplications = 1\n\n[[param]]\npath = \"trust\"\nvalues = [{ erosion = 0.1 }, { erosio = 0.2 }]\n";
    assert_refused(
        "trust = { erosio }",
        sweep,
        &[],
        &[
            "sweep.toml",
            "key `param[0].values[1]`",
            "design point 1",
            "key `trust.erosio`",
            "unknown field `erosio`",
            "`erosion`",
        ],
        ("sweep.toml", 6),
    );
}

#[test]
fn a_value_of_the_wrong_type_is_refused() {
    // At the first point, and at a later one (one check per distinct type).
    for values in ["[\"high\", 0.2]", "[0.1, \"high\"]"] {
        let sweep = format!(
            "scenario = \"../base.toml\"\nreplications = 1\n\n[[param]]\npath = \"trust.erosion\"\nvalues = {values}\n"
        );
        let k = if values.starts_with("[\"") { 0 } else { 1 };
        let key = format!("key `param[0].values[{k}]`");
        assert_refused(
            values,
            &sweep,
            &[],
            &[
                "sweep.toml",
                &key,
                "trust.erosion",
                "invalid type: string \"high\", expected a number",
            ],
            ("sweep.toml", 6),
        );
    }
    // A table cell.
    assert_refused(
        "table cell",
        TABLE,
        &[("rows.csv", "e,r\n0.1,0.2\n0.2x,0.3\n")],
        &[
            "sweep.toml",
            "key `param[0].path`",
            "row 2 of `rows.csv`",
            "expected a number",
        ],
        ("sweep.toml", 9),
    );
}

#[test]
fn a_valid_table_sweep_with_two_params_runs() {
    let (tmp, sweep) = setup(TABLE, &[("rows.csv", "e,r\n0.1,0.3\n0.4,0.2\n")]);
    let out_dir = tmp.path().join("out");
    let out = sweep_to(tmp.path(), &sweep, &out_dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = std::fs::read_to_string(out_dir.join("runs.csv")).unwrap();
    let mut lines = runs.lines();
    assert_eq!(
        lines.next(),
        Some("point,replication,seed,e,r,status,securitization_cost@all")
    );
    assert!(lines.next().unwrap().starts_with("0,0,1,0.1,0.3,ok,"));
    assert!(lines.next().unwrap().starts_with("1,0,1,0.4,0.2,ok,"));
    // Every column the sweep writes besides the parameters' and the
    // metrics' is a reserved name.
    for file in ["runs.csv", "failures.csv", "points.csv"] {
        let text = std::fs::read_to_string(out_dir.join(file)).unwrap();
        for col in text.lines().next().unwrap().split(',') {
            assert!(
                ["e", "r"].contains(&col)
                    || col.starts_with("securitization_cost@all")
                    || techdiff::sweep::RESERVED_COLUMNS.contains(&col),
                "{file}: column `{col}` is neither a parameter's, a metric's nor reserved"
            );
        }
    }
}

#[test]
fn a_value_out_of_range_fails_only_its_point() {
    // trust.recovery is in [0, 1]: the first point's 1.5 is the runs' to
    // refuse, not the sweep's.
    let sweep = "scenario = \"../base.toml\"\nreplications = 1\nmetrics = [\"securitization_cost\"]\n\n[[param]]\npath = \"trust.recovery\"\nvalues = [1.5, 0.2]\n";
    let (tmp, path) = setup(sweep, &[]);
    let out_dir = tmp.path().join("out");
    let out = sweep_to(tmp.path(), &path, &out_dir);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failures = std::fs::read_to_string(out_dir.join("failures.csv")).unwrap();
    assert_eq!(failures.lines().count(), 2, "{failures}");
    assert!(
        failures.contains("value set by sweep point 0"),
        "{failures}"
    );
}

/// serde's own words are put in TOML's, and a missing required key is
/// named as the key (it was `missing field `scenario``, with no key).
#[test]
fn type_errors_and_missing_keys_name_the_key_in_toml_words() {
    let err = assert_refused(
        "replications = 1.5",
        "scenario = \"../base.toml\"\nreplications = 1.5\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1]\n",
        &[],
        &["key `replications`", "expected an integer"],
        ("sweep.toml", 2),
    );
    assert!(!err.contains("i64"), "{err}");
    let err = assert_refused(
        "no path",
        "scenario = \"../base.toml\"\nreplications = 1\n[[param]]\nvalues = [0.1]\n",
        &[],
        &["key `param[0].path`", "required"],
        ("sweep.toml", 3),
    );
    assert!(!err.contains("missing field"), "{err}");
    // No position for a key that is not in the file: the message alone.
    let (tmp, path) = setup(
        "replications = 1\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1]\n",
        &[],
    );
    let out = sweep_to(tmp.path(), &path, &tmp.path().join("out"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("sweep.toml") && err.contains("key `scenario`: required"),
        "{err}"
    );
    assert!(!tmp.path().join("out").exists());
}

/// A zero effect is written 0 in sensitivity.csv, not -0 (a Morris step
/// taken downwards over a metric that does not move gave -0 for mu).
#[test]
fn zero_effects_are_written_0() {
    let (tmp, path) = setup(
        r#"scenario = "../base.toml"
replications = 1
design = "morris"
samples = 2
levels = 2
bootstrap = 10
[[param]]
path = "steps"
min = 2
max = 3
integer = true
"#,
        &[],
    );
    let out_dir = tmp.path().join("out");
    let out = sweep_to(tmp.path(), &path, &out_dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(out_dir.join("sensitivity.csv")).unwrap();
    let cells: Vec<&str> = text.lines().skip(1).flat_map(|l| l.split(',')).collect();
    // The regime starts after the 3 steps: every metric is 0, every effect 0.
    assert!(cells.contains(&"0"), "{text}");
    assert!(!cells.contains(&"-0"), "{text}");
}

/// A sampled parameter that cannot vary is refused: its indices would be 0,
/// read as "no influence", when it was never tried.
#[test]
fn a_sampled_parameter_without_a_range_is_refused() {
    let sweep = |design: &str, range: &str| {
        format!(
            "scenario = \"../base.toml\"\nreplications = 1\ndesign = \"{design}\"\nsamples = 2\nmetrics = [\"securitization_cost\"]\n\n[[param]]\npath = \"trust.erosion\"\nmin = 0.1\nmax = 0.5\n\n[[param]]\npath = \"steps\"\n{range}\n"
        )
    };
    for design in ["lhs", "sobol", "morris"] {
        let err = assert_refused(
            design,
            &sweep(design, "min = 3.0\nmax = 3.0"),
            &[],
            &[
                "param[1].max",
                &format!("design `{design}`"),
                "min = max = 3",
                "set it in the scenario",
            ],
            ("sweep.toml", 15),
        );
        assert!(!err.contains("integer"), "{err}");
        assert_refused(
            design,
            &sweep(design, "min = 2.6\nmax = 3.4\ninteger = true"),
            &[],
            &["param[1].max", "round to the same integer (3)"],
            ("sweep.toml", 15),
        );
    }
    // One integer apart is a range.
    let (tmp, path) = setup(&sweep("lhs", "min = 2.6\nmax = 3.6\ninteger = true"), &[]);
    let out = sweep_to(tmp.path(), &path, &tmp.path().join("out"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `techdiff validate` reads a sweep file as `techdiff sweep` does, builds
/// every design point's scenario, and names the points that would fail.
#[test]
fn validate_checks_a_sweep_and_builds_every_point() {
    let sweep = |values: &str| {
        format!(
            "scenario = \"../base.toml\"\nreplications = 3\nmetrics = [\"securitization_cost\"]\n\n[[param]]\npath = \"trust.erosion\"\nvalues = {values}\n"
        )
    };
    let (tmp, path) = setup(&sweep("[0.1, 0.2]"), &[]);
    let out = techdiff_in(&["validate", path.to_str().unwrap()], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ok (sweep: design `grid`, 1 parameter, 2 points x 3 replications = 6 runs"),
        "{text}"
    );
    // The sweep's own checks run: an unknown key is refused as by `sweep`.
    std::fs::write(&path, sweep("[0.1]") + "bogus = 1\n").unwrap();
    let out = techdiff_in(&["validate", path.to_str().unwrap()], tmp.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sweep.toml:8:1: key `param[0].bogus`: unknown field"),
        "{err}"
    );
    // Values the scenario refuses: each such point would run as a failed
    // run; validate counts them and names the first with its key.
    std::fs::write(&path, sweep("[0.1, -1.0, 0.2, -2.0]")).unwrap();
    let out = techdiff_in(&["validate", path.to_str().unwrap()], tmp.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for needle in [
        "sweep.toml: 2 of 4 design points would fail",
        "point 1:",
        "key `trust.erosion`: must be >= 0, got -1",
    ] {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}
