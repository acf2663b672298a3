//! Bad input, end to end: every kind of mistake in a scenario file, a data
//! file it names or the command line must give exit code 2 and one clear line
//! on stderr (`error: FILE[:LINE:COL]: key `PATH`: what is wrong and what is
//! allowed`), for both `techdiff validate` and `techdiff run`, and never a
//! panic or a hang. A positive control checks that a valid tiny scenario runs.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than any of these runs needs (the largest, the absurd-size case,
/// takes a few seconds); reaching it means the binary hangs.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The tiny valid scenario the cases edit. Line numbers matter: cases assert
/// `scenario.toml:LINE:` for keys whose line is known.
const BASE: &str = r#"name = "tiny"
steps = 2
replications = 1
seed = 3

[[world.country]]
code = "AAA"
bloc = "A"
gdp = 2.0

[[world.country]]
code = "BBB"
bloc = "B"

[[world.country]]
code = "CCC"
bloc = "B"

[network]
kind = "complete"

[innovation]
per_step = 5

[[sector]]
name = "chips"
sensitivity = 0.9

[[sector]]
name = "food"
sensitivity = 0.1

[[policy.export_control]]
name = "core"
controllers = ["AAA"]
targets = ["bloc:B"]
sectors = { chips = 0.5 }
licence_rate = 0.2
cost = 0.1
"#;

/// A scenario with no world at all, for the world-source cases.
const HEAD: &str = r#"name = "tiny"
steps = 2
replications = 1

[innovation]
per_step = 5
"#;

/// BASE with each `(old, new)` replaced once (`old` must be there).
fn edit(pairs: &[(&str, &str)]) -> String {
    let mut s = BASE.to_string();
    for (old, new) in pairs {
        assert_eq!(s.matches(old).count(), 1, "`{old}` must occur once in BASE");
        s = s.replacen(old, new, 1);
    }
    s
}

/// BASE with `text` appended (new tables after the last regime).
fn append(text: &str) -> String {
    format!("{BASE}\n{text}")
}

/// Where the message must point.
#[derive(Clone, Copy)]
enum Loc {
    /// `FILE:LINE:COL:` with this line.
    Line(&'static str, usize),
    /// `FILE:LINE:COL:` with some line and column.
    Any(&'static str),
    /// No position required (the key is not in the file, or there is no file).
    NoCheck,
}

struct Case {
    label: &'static str,
    scenario: Vec<u8>,
    /// Other files next to the scenario: (name, contents).
    extra: Vec<(&'static str, Vec<u8>)>,
    /// Substrings stderr must contain: the file, the key path, what is allowed.
    needles: Vec<&'static str>,
    loc: Loc,
}

fn case(
    label: &'static str,
    scenario: impl Into<String>,
    needles: &[&'static str],
    loc: Loc,
) -> Case {
    Case {
        label,
        scenario: scenario.into().into_bytes(),
        extra: Vec::new(),
        needles: needles.to_vec(),
        loc,
    }
}

impl Case {
    fn with_file(mut self, name: &'static str, contents: impl Into<Vec<u8>>) -> Case {
        self.extra.push((name, contents.into()));
        self
    }
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run the binary in `dir` with `args`; kill it and fail if it hangs.
fn techdiff(dir: &Path, args: &[OsString]) -> Outcome {
    let log_dir = tempfile::tempdir().expect("temp dir for logs");
    let out_path = log_dir.path().join("stdout");
    let err_path = log_dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_techdiff"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start techdiff");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for techdiff") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("techdiff {args:?} did not finish within {TIMEOUT:?} (hang)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        code: status.code(),
        stdout: String::from_utf8_lossy(&fs::read(&out_path).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap()).into_owned(),
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `FILE:LINE:COL:` right after some occurrence of `file` in `text`.
fn line_col_after(text: &str, file: &str) -> Option<(usize, usize)> {
    text.match_indices(file).find_map(|(i, _)| {
        let rest = text[i + file.len()..].strip_prefix(':')?;
        let mut parts = rest.splitn(3, ':');
        let line = parts.next()?.parse().ok()?;
        let col = parts.next()?.parse().ok()?;
        parts.next()?;
        Some((line, col))
    })
}

/// Everything a bad-input outcome must satisfy; returns the problems found.
/// `single_line`: the whole of stderr is that one `error:` line.
fn problems(out: &Outcome, needles: &[&str], loc: Loc, single_line: bool) -> Vec<String> {
    let mut p = Vec::new();
    let err = &out.stderr;
    if out.code != Some(2) {
        p.push(format!("exit code {:?}, expected Some(2)", out.code));
    }
    if err.contains("panicked") {
        p.push("stderr reports a panic".into());
    }
    let error_lines = err.lines().filter(|l| l.starts_with("error:")).count();
    if error_lines != 1 {
        p.push(format!(
            "{error_lines} lines start with `error:`, expected exactly 1"
        ));
    }
    if single_line && err.trim_end().lines().count() != 1 {
        p.push("stderr has more than the one `error:` line".into());
    }
    for n in needles {
        if !err.contains(n) {
            p.push(format!("stderr lacks `{n}`"));
        }
    }
    match loc {
        Loc::Line(file, line) => match line_col_after(err, file) {
            Some((l, _)) if l == line => {}
            other => p.push(format!("expected `{file}:{line}:COL:`, found {other:?}")),
        },
        Loc::Any(file) => {
            if line_col_after(err, file).is_none() {
                p.push(format!("expected `{file}:LINE:COL:`"));
            }
        }
        Loc::NoCheck => {}
    }
    if !p.is_empty() {
        p.push(format!("stderr was: {err:?}; stdout was: {:?}", out.stdout));
    }
    p
}

/// Write the case into a fresh temp dir and check `validate` and `run`.
fn check_file_case(c: &Case) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("scenario.toml");
    fs::write(&scenario, &c.scenario).unwrap();
    for (name, contents) in &c.extra {
        fs::write(dir.path().join(name), contents).unwrap();
    }
    check_path_case(c.label, dir.path(), &scenario, &c.needles, c.loc)
}

/// Check `validate PATH` and `run PATH --out DIR/out --quiet`: both exit 2
/// with one clear message, and the failed run writes nothing.
fn check_path_case(
    label: &str,
    dir: &Path,
    path: &Path,
    needles: &[&str],
    loc: Loc,
) -> Vec<String> {
    let out_dir = dir.join("out");
    let mut all = Vec::new();
    let validate = techdiff(dir, &[OsString::from("validate"), path.into()]);
    for p in problems(&validate, needles, loc, true) {
        all.push(format!("[{label}] validate: {p}"));
    }
    let run = techdiff(
        dir,
        &[
            OsString::from("run"),
            path.into(),
            "--out".into(),
            out_dir.clone().into(),
            "--quiet".into(),
        ],
    );
    for p in problems(&run, needles, loc, true) {
        all.push(format!("[{label}] run: {p}"));
    }
    if out_dir.exists() {
        all.push(format!(
            "[{label}] run: the failed run created {}",
            out_dir.display()
        ));
    }
    all
}

fn check_all(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().flat_map(check_file_case).collect();
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// The controls: BASE is valid, so each case tests only its own mistake.
#[test]
fn valid_tiny_scenario_validates_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.toml");
    fs::write(&scenario, BASE).unwrap();
    let v = techdiff(
        dir.path(),
        &[OsString::from("validate"), scenario.clone().into()],
    );
    assert_eq!(v.code, Some(0), "validate failed: {}", v.stderr);
    assert!(v.stdout.contains("ok (3 countries"), "stdout: {}", v.stdout);
    assert!(!v.stderr.contains("panicked"));

    let out_dir = dir.path().join("out");
    let r = techdiff(
        dir.path(),
        &[
            OsString::from("run"),
            scenario.into(),
            "--out".into(),
            out_dir.clone().into(),
            "--quiet".into(),
        ],
    );
    assert_eq!(r.code, Some(0), "run failed: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
    for f in [
        "timeseries.csv",
        "countries.csv",
        "summary.json",
        "manifest.json",
    ] {
        let p = out_dir.join(f);
        let meta = fs::metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(meta.len() > 0, "{} is empty", p.display());
    }
    let mut stack = vec![out_dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.contains(".tmp"),
                "leftover temporary file {}",
                p.display()
            );
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
}

#[test]
fn toml_syntax_error() {
    check_all(&[
        case(
            "extra `=` on line 2",
            "steps = 2\nseed = = 4\n",
            &["scenario.toml:2:", "syntax error"],
            Loc::Line("scenario.toml", 2),
        ),
        case(
            "unclosed table header",
            edit(&[("[network]", "[network")]),
            &["scenario.toml:19:", "syntax error"],
            Loc::Line("scenario.toml", 19),
        ),
        case(
            "unterminated string",
            edit(&[("kind = \"complete\"", "kind = \"complete")]),
            &["scenario.toml:20:", "syntax error"],
            Loc::Line("scenario.toml", 20),
        ),
    ]);
}

#[test]
fn unknown_keys() {
    check_all(&[
        case(
            "top level",
            format!("stepz = 2\n{BASE}"),
            &["scenario.toml", "key `stepz`", "unknown field", "`steps`"],
            Loc::Line("scenario.toml", 1),
        ),
        case(
            "[trust] foo",
            append("[trust]\nfoo = 1\n"),
            &[
                "scenario.toml",
                "key `trust.foo`",
                "unknown field",
                "`same_bloc`",
            ],
            Loc::Line("scenario.toml", 42),
        ),
        case(
            "[[policy.export_control]] licence",
            edit(&[("licence_rate = 0.2", "licence = 0.5")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].licence`",
                "`licence_rate`",
            ],
            Loc::Line("scenario.toml", 38),
        ),
        case(
            "[[world.country]] population",
            edit(&[("gdp = 2.0", "population = 5")]),
            &[
                "scenario.toml",
                "key `world.country[0].population`",
                "`gdp`",
            ],
            Loc::Line("scenario.toml", 9),
        ),
        case(
            "[[sector]] risk",
            edit(&[("sensitivity = 0.9", "risk = 0.9")]),
            &["scenario.toml", "key `sector[0].risk`", "`sensitivity`"],
            Loc::Line("scenario.toml", 27),
        ),
    ]);
}

#[test]
fn wrong_types() {
    check_all(&[
        case(
            "steps = \"ten\"",
            edit(&[("steps = 2", "steps = \"ten\"")]),
            &["scenario.toml", "key `steps`", "expected an integer"],
            Loc::Line("scenario.toml", 2),
        ),
        case(
            "seed = 1.5",
            edit(&[("seed = 3", "seed = 1.5")]),
            &["scenario.toml", "key `seed`", "expected an integer"],
            Loc::Line("scenario.toml", 4),
        ),
        case(
            "licence_rate = \"high\"",
            edit(&[("licence_rate = 0.2", "licence_rate = \"high\"")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].licence_rate`",
                "expected a number",
            ],
            Loc::Line("scenario.toml", 38),
        ),
        case(
            "controllers = \"AAA\" (not an array)",
            edit(&[("controllers = [\"AAA\"]", "controllers = \"AAA\"")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].controllers`",
                "expected an array",
            ],
            Loc::Line("scenario.toml", 35),
        ),
        case(
            "network.kind = 3",
            edit(&[("kind = \"complete\"", "kind = 3")]),
            &["scenario.toml", "key `network.kind`", "expected a string"],
            Loc::Line("scenario.toml", 20),
        ),
        case(
            "[[world.country]] without code",
            edit(&[("code = \"AAA\"\n", "")]),
            &[
                "scenario.toml",
                "key `world.country[0]`",
                "missing field `code`",
            ],
            Loc::Any("scenario.toml"),
        ),
    ]);
}

#[test]
fn out_of_range_values() {
    check_all(&[
        case(
            "licence_rate = 1.5",
            edit(&[("licence_rate = 0.2", "licence_rate = 1.5")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].licence_rate`",
                "[0, 1]",
                "1.5",
            ],
            Loc::Line("scenario.toml", 38),
        ),
        case(
            "transparency = -0.1",
            append("[policy.cooperation]\ntransparency = -0.1\n"),
            &[
                "scenario.toml",
                "key `policy.cooperation.transparency`",
                "[0, 1]",
                "-0.1",
            ],
            Loc::Line("scenario.toml", 42),
        ),
        case(
            "steps = 0",
            edit(&[("steps = 2", "steps = 0")]),
            &["scenario.toml", "key `steps`", "from 1 to"],
            Loc::Line("scenario.toml", 2),
        ),
        case(
            "replications = -3",
            edit(&[("replications = 1", "replications = -3")]),
            &["scenario.toml", "key `replications`", "from 1 to"],
            Loc::Line("scenario.toml", 3),
        ),
        case(
            "sector scope 2",
            edit(&[("chips = 0.5", "chips = 2")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].sectors.chips`",
                "[0, 1]",
            ],
            Loc::Line("scenario.toml", 37),
        ),
        case(
            "gdp = 0",
            edit(&[("gdp = 2.0", "gdp = 0")]),
            &["scenario.toml", "key `world.country[0].gdp`", "> 0"],
            Loc::Line("scenario.toml", 9),
        ),
    ]);
}

#[test]
fn non_finite_values() {
    check_all(&[
        case(
            "beta = nan",
            append("[diffusion]\nbeta = nan\n"),
            &["scenario.toml", "key `diffusion.beta`", "finite", ">= 0"],
            Loc::Line("scenario.toml", 42),
        ),
        case(
            "cost = inf",
            edit(&[("cost = 0.1", "cost = inf")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].cost`",
                "finite",
                ">= 0",
            ],
            Loc::Line("scenario.toml", 39),
        ),
        case(
            "schedule multiplier nan",
            edit(&[("cost = 0.1", "cost = 0.1\nschedule = [[1, nan]]")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].schedule[0]`",
                "finite",
            ],
            Loc::Line("scenario.toml", 40),
        ),
    ]);
}

#[test]
fn unknown_references() {
    check_all(&[
        case(
            "unknown country code as controller",
            edit(&[("controllers = [\"AAA\"]", "controllers = [\"ZZZ\"]")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].controllers[0]`",
                "`ZZZ`",
                "countries: AAA, BBB, CCC",
            ],
            Loc::Line("scenario.toml", 35),
        ),
        case(
            "unknown country code as initial holder",
            append(
                "[[innovation.initial]]\nsector = \"chips\"\nholders = [\"AAA\", \"XYZ\"]\nquality = 1.0\n",
            ),
            &[
                "scenario.toml",
                "key `innovation.initial[0].holders[1]`",
                "`XYZ`",
                "countries: AAA, BBB, CCC",
            ],
            Loc::Line("scenario.toml", 43),
        ),
        case(
            "unknown country code in trust.pair",
            append("[[trust.pair]]\ntruster = \"AAA\"\ntrusted = \"QQQ\"\ninitial = 0.5\n"),
            &[
                "scenario.toml",
                "key `trust.pair[0].trusted`",
                "`QQQ`",
                "countries: AAA, BBB, CCC",
            ],
            Loc::Line("scenario.toml", 43),
        ),
        case(
            "unknown sector in a regime's sectors",
            edit(&[("chips = 0.5", "gold = 0.5")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].sectors.gold`",
                "sectors: chips, food",
            ],
            Loc::Line("scenario.toml", 37),
        ),
        case(
            "unknown sector in positive_list",
            append("[policy.cooperation]\npositive_list = [\"food\", \"gold\"]\n"),
            &[
                "scenario.toml",
                "key `policy.cooperation.positive_list[1]`",
                "sectors: chips, food",
            ],
            Loc::Line("scenario.toml", 42),
        ),
        case(
            "unknown bloc in bloc:X",
            edit(&[("targets = [\"bloc:B\"]", "targets = [\"bloc:Q\"]")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].targets[0]`",
                "`Q`",
                "blocs: A, B",
            ],
            Loc::Line("scenario.toml", 36),
        ),
        case(
            "unknown income group in income:X",
            edit(&[("targets = [\"bloc:B\"]", "targets = [\"income:rich\"]")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].targets[0]`",
                "allowed: high, upper_middle, lower_middle, low",
            ],
            Loc::Line("scenario.toml", 36),
        ),
        case(
            "bad selector (empty string)",
            edit(&[("targets = [\"bloc:B\"]", "targets = [\"bloc:B\", \"\"]")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].targets[1]`",
                "`all`, `bloc:X` or `income:X`",
            ],
            Loc::Line("scenario.toml", 36),
        ),
    ]);
}

#[test]
fn duplicates() {
    check_all(&[
        case(
            "duplicate inline country code",
            edit(&[("code = \"CCC\"", "code = \"AAA\"")]),
            &[
                "scenario.toml",
                "key `world.country[2].code`",
                "duplicate country code `AAA`",
                "unique",
            ],
            Loc::Line("scenario.toml", 16),
        ),
        case(
            "duplicate country code in a CSV",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &[
                "countries.csv",
                "column `code`",
                "duplicate country code `AAA`",
                "unique",
            ],
            Loc::Line("countries.csv", 4),
        )
        .with_file("countries.csv", "code,gdp\nAAA,1\nBBB,2\nAAA,3\n"),
        case(
            "duplicate sector name",
            edit(&[("name = \"food\"", "name = \"chips\"")]),
            &[
                "scenario.toml",
                "key `sector[1].name`",
                "duplicate sector name `chips`",
                "unique",
            ],
            Loc::Line("scenario.toml", 30),
        ),
        case(
            "duplicate regime name",
            append(
                "[[policy.export_control]]\nname = \"core\"\ncontrollers = [\"BBB\"]\nsectors = { food = 0.1 }\n",
            ),
            &[
                "scenario.toml",
                "key `policy.export_control[1].name`",
                "unique",
            ],
            Loc::Line("scenario.toml", 42),
        ),
    ]);
}

#[test]
fn unreadable_scenario_files() {
    let mut failures = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let missing = d.join("nope.toml");
    failures.extend(check_path_case(
        "missing file",
        d,
        &missing,
        &["nope.toml", "does not exist"],
        Loc::NoCheck,
    ));

    let empty = d.join("empty.toml");
    fs::write(&empty, "").unwrap();
    failures.extend(check_path_case(
        "empty file",
        d,
        &empty,
        &["empty.toml", "is empty"],
        Loc::NoCheck,
    ));

    let binary = d.join("binary.toml");
    fs::write(&binary, b"steps = 2\n\0\x01\x02\xff").unwrap();
    failures.extend(check_path_case(
        "binary file",
        d,
        &binary,
        &["binary.toml", "binary, not text"],
        Loc::NoCheck,
    ));

    let latin1 = d.join("latin1.toml");
    fs::write(&latin1, b"name = \"caf\xe9\"\n").unwrap();
    failures.extend(check_path_case(
        "not UTF-8",
        d,
        &latin1,
        &["latin1.toml", "not UTF-8"],
        Loc::NoCheck,
    ));

    let folder = d.join("folder.toml");
    fs::create_dir(&folder).unwrap();
    failures.extend(check_path_case(
        "folder as scenario",
        d,
        &folder,
        &["folder.toml", "is a folder, not a file"],
        Loc::NoCheck,
    ));

    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn bad_data_files() {
    check_all(&[
        case(
            "world.countries names a missing CSV",
            format!("world.countries = \"nope.csv\"\n{HEAD}"),
            &[
                "scenario.toml",
                "key `world.countries`",
                "nope.csv",
                "does not exist",
            ],
            Loc::Line("scenario.toml", 1),
        ),
        case(
            "world.countries names an empty CSV",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &[
                "scenario.toml",
                "key `world.countries`",
                "countries.csv",
                "is empty",
            ],
            Loc::Line("scenario.toml", 1),
        )
        .with_file("countries.csv", ""),
        case(
            "world.countries names a binary file",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &[
                "scenario.toml",
                "key `world.countries`",
                "countries.csv",
                "binary",
            ],
            Loc::Line("scenario.toml", 1),
        )
        .with_file("countries.csv", b"code\0gdp\n".to_vec()),
        case(
            "CSV with an unknown column",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &[
                "countries.csv",
                "unknown column `colour`",
                "allowed columns: code, name",
            ],
            Loc::Line("countries.csv", 1),
        )
        .with_file("countries.csv", "code,gdp,colour\nAAA,1,red\nBBB,2,blue\n"),
        case(
            "CSV with a non-numeric gdp",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &["countries.csv", "column `gdp`", "`lots`", "not a number"],
            Loc::Line("countries.csv", 3),
        )
        .with_file("countries.csv", "code,gdp\nAAA,1\nBBB,lots\n"),
        case(
            "CSV with a negative gdp",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &["countries.csv", "column `gdp`", "> 0"],
            Loc::Line("countries.csv", 2),
        )
        .with_file("countries.csv", "code,gdp\nAAA,-1\nBBB,2\n"),
        case(
            "CSV without a code column",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &["countries.csv", "no `code` column", "allowed columns"],
            Loc::Line("countries.csv", 1),
        )
        .with_file("countries.csv", "name,gdp\nAlpha,1\n"),
        case(
            "CSV with a short row",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &["countries.csv", "bad row", "2 fields"],
            Loc::Line("countries.csv", 3),
        )
        .with_file("countries.csv", "code,gdp\nAAA,1\nBBB\n"),
        case(
            "edge list with an unknown country code",
            edit(&[(
                "kind = \"complete\"",
                "kind = \"edges\"\nfile = \"edges.csv\"",
            )]),
            &["edges.csv", "column `target`", "unknown country code `QQQ`"],
            Loc::Line("edges.csv", 2),
        )
        .with_file("edges.csv", "source,target,weight\nAAA,QQQ,1\n"),
        case(
            "network.file names a missing file",
            edit(&[(
                "kind = \"complete\"",
                "kind = \"edges\"\nfile = \"edges.csv\"",
            )]),
            &[
                "scenario.toml",
                "key `network.file`",
                "edges.csv",
                "does not exist",
            ],
            Loc::Line("scenario.toml", 21),
        ),
    ]);
}

#[test]
fn impossible_worlds() {
    check_all(&[
        case(
            "no world source",
            HEAD,
            &[
                "scenario.toml",
                "key `world`",
                "[[world.country]]",
                "[world.synthetic]",
            ],
            Loc::NoCheck,
        ),
        case(
            "empty [world] table",
            format!("{HEAD}\n[world]\n"),
            &["scenario.toml", "key `world`", "[[world.country]]"],
            Loc::Any("scenario.toml"),
        ),
        case(
            "two world sources",
            format!("world.countries = \"c.csv\"\n{HEAD}\n[world.synthetic]\ncount = 3\n"),
            &["scenario.toml", "key `world`", "exactly one"],
            Loc::Any("scenario.toml"),
        ),
        case(
            "CSV with a header only",
            format!("world.countries = \"countries.csv\"\n{HEAD}"),
            &["countries.csv", "no countries", "at least one"],
            Loc::NoCheck,
        )
        .with_file("countries.csv", "code,gdp\n"),
        case(
            "regime without controllers",
            edit(&[("controllers = [\"AAA\"]\n", "")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].controllers`",
                "at least one controller",
            ],
            Loc::Line("scenario.toml", 33),
        ),
        case(
            "regime with an empty controllers list",
            edit(&[("controllers = [\"AAA\"]", "controllers = []")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].controllers`",
                "at least one controller",
            ],
            Loc::Line("scenario.toml", 35),
        ),
        case(
            "regime with no sectors",
            edit(&[("sectors = { chips = 0.5 }\n", "")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].sectors`",
                "at least one sector",
            ],
            Loc::NoCheck,
        ),
        case(
            "end before start",
            edit(&[("cost = 0.1", "cost = 0.1\nstart = 2\nend = 1")]),
            &[
                "scenario.toml",
                "key `policy.export_control[0].end`",
                "before start (2)",
            ],
            Loc::Line("scenario.toml", 41),
        ),
        case(
            "every country has rd = 0",
            edit(&[
                ("gdp = 2.0", "gdp = 2.0\nrd = 0"),
                ("code = \"BBB\"", "code = \"BBB\"\nrd = 0"),
                ("code = \"CCC\"", "code = \"CCC\"\nrd = 0"),
            ]),
            &["scenario.toml", "rd = 0", "innovation.per_step = 0"],
            Loc::NoCheck,
        ),
    ]);
}

#[test]
fn absurd_sizes() {
    check_all(&[
        case(
            "5000 countries x 1e6 innovations a step x 1000 steps",
            "steps = 1000\nreplications = 1\n[world.synthetic]\ncount = 5000\n[innovation]\nper_step = 1e6\n",
            &[
                "scenario.toml",
                "key `innovation.per_step`",
                "too large",
                "GiB",
            ],
            Loc::Line("scenario.toml", 6),
        ),
        case(
            "world.synthetic.count = 100000",
            format!("{HEAD}\n[world.synthetic]\ncount = 100000\n"),
            &[
                "scenario.toml",
                "key `world.synthetic.count`",
                "from 1 to 5000",
            ],
            Loc::Line("scenario.toml", 9),
        ),
        case(
            "a distribution key that its distribution does not take",
            format!(
                "{HEAD}\n[world.synthetic]\ncount = 4\ngdp = {{ distribution = \"uniform\", min = 1.0, max = 2.0, sigma = 3.0 }}\n"
            ),
            &[
                "scenario.toml",
                "key `world.synthetic.gdp.sigma`",
                "takes min, max",
            ],
            Loc::Any("scenario.toml"),
        ),
        case(
            "gdp x rd overflows (births are proportional to it)",
            edit(&[("gdp = 2.0", "gdp = 1e300\nrd = 1e10")]),
            &[
                "scenario.toml",
                "key `world.country[0].rd`",
                "overflows",
                "1.000e300 x 1.000e10 for `AAA`",
            ],
            Loc::Any("scenario.toml"),
        ),
        case(
            "a beta distribution's negative second shape",
            format!(
                "{HEAD}\n[world.synthetic]\ncount = 4\nabsorptive = {{ distribution = \"beta\", alpha = 2.0, beta = -1.0 }}\n"
            ),
            &[
                "scenario.toml",
                "key `world.synthetic.absorptive.beta`",
                "must be > 0, got 2 and -1",
            ],
            Loc::Any("scenario.toml"),
        ),
        case(
            "a log-normal distribution's negative sigma",
            format!(
                "{HEAD}\n[world.synthetic]\ncount = 4\ngdp = {{ distribution = \"lognormal\", mu = 1.0, sigma = -0.5 }}\n"
            ),
            &[
                "scenario.toml",
                "key `world.synthetic.gdp.sigma`",
                "must be >= 0, got -0.5",
            ],
            Loc::Any("scenario.toml"),
        ),
        case(
            "steps = 1000000",
            edit(&[("steps = 2", "steps = 1000000")]),
            &["scenario.toml", "key `steps`", "from 1 to 10000"],
            Loc::Line("scenario.toml", 2),
        ),
        case(
            "integer too large for TOML",
            edit(&[("steps = 2", "steps = 99999999999999999999")]),
            &["scenario.toml:2:", "syntax error"],
            Loc::Line("scenario.toml", 2),
        ),
    ]);
}

#[test]
fn network_misconfig() {
    check_all(&[
        case(
            "unknown kind",
            edit(&[("kind = \"complete\"", "kind = \"ring\"")]),
            &[
                "scenario.toml",
                "key `network.kind`",
                "`ring`",
                "allowed: gravity, edges, complete",
            ],
            Loc::Line("scenario.toml", 20),
        ),
        case(
            "p given for gravity",
            edit(&[("kind = \"complete\"", "kind = \"gravity\"\np = 0.5")]),
            &[
                "scenario.toml",
                "key `network.p`",
                "only to network.kind = \"erdos_renyi\"",
            ],
            Loc::Line("scenario.toml", 21),
        ),
        case(
            "barabasi_albert m too large",
            edit(&[("kind = \"complete\"", "kind = \"barabasi_albert\"\nm = 5")]),
            &["scenario.toml", "key `network.m`", "from 1 to 2", "got 5"],
            Loc::Line("scenario.toml", 21),
        ),
        case(
            "barabasi_albert without m",
            edit(&[("kind = \"complete\"", "kind = \"barabasi_albert\"")]),
            &["scenario.toml", "key `network.m`", "needs `m`"],
            Loc::Any("scenario.toml"),
        ),
        case(
            "erdos_renyi p = 2",
            edit(&[("kind = \"complete\"", "kind = \"erdos_renyi\"\np = 2")]),
            &["scenario.toml", "key `network.p`", "[0, 1]"],
            Loc::Line("scenario.toml", 21),
        ),
        case(
            "small_world odd k",
            edit(&[("kind = \"complete\"", "kind = \"small_world\"\nk = 3")]),
            &["scenario.toml", "key `network.k`", "even integer"],
            Loc::Line("scenario.toml", 21),
        ),
        case(
            "unknown normalisation",
            edit(&[(
                "kind = \"complete\"",
                "kind = \"complete\"\nnormalize = \"row\"",
            )]),
            &[
                "scenario.toml",
                "key `network.normalize`",
                "allowed: recipient, none",
            ],
            Loc::Line("scenario.toml", 21),
        ),
    ]);
}

/// `run` with extra command-line arguments on a valid scenario.
fn check_run_args(
    label: &str,
    scenario: Option<&str>,
    extra: &[&str],
    needles: &[&str],
    single_line: bool,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out_dir: PathBuf = dir.path().join("out");
    let mut args = vec![OsString::from("run")];
    if let Some(text) = scenario {
        let path = dir.path().join("scenario.toml");
        fs::write(&path, text).unwrap();
        args.push(path.into());
    }
    args.extend(os(&["--out"]));
    args.push(out_dir.clone().into());
    args.extend(os(&["--quiet"]));
    args.extend(os(extra));
    let out = techdiff(dir.path(), &args);
    let mut p: Vec<String> = problems(&out, needles, Loc::NoCheck, single_line)
        .into_iter()
        .map(|p| format!("[{label}] {p}"))
        .collect();
    if out_dir.exists() {
        p.push(format!(
            "[{label}] the failed run created {}",
            out_dir.display()
        ));
    }
    p
}

#[test]
fn bad_set_overrides() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "no `=`",
            &["--set", "steps"],
            &["command line", "--set steps", "key.path=value"],
        ),
        (
            "unknown array element name",
            &["--set", "policy.export_control[nope].cost=1"],
            &[
                "command line",
                "key `policy.export_control[nope].cost`",
                "no element named `nope`",
                "names: core",
            ],
        ),
        (
            "index out of range",
            &["--set", "policy.export_control[3].cost=1"],
            &[
                "command line",
                "key `policy.export_control[3].cost`",
                "1 element(s)",
                "index 3",
            ],
        ),
        (
            "malformed key path",
            &["--set", "trust..erosion=0.1"],
            &["command line", "bad key path", "empty key segment"],
        ),
        (
            "key into a non-table",
            &["--set", "steps.x=1"],
            &["command line", "key `steps.x`", "not a table"],
        ),
        (
            "value out of range (by name)",
            &["--set", "policy.export_control[core].licence_rate=1.5"],
            &[
                "scenario.toml",
                "key `policy.export_control[0].licence_rate`",
                "[0, 1]",
                "command line",
            ],
        ),
        (
            "value out of range (by index)",
            &["--set", "policy.export_control[0].cost=-1"],
            &[
                "scenario.toml",
                "key `policy.export_control[0].cost`",
                ">= 0",
                "command line",
            ],
        ),
        (
            "non-finite value",
            &["--set", "diffusion.beta=nan"],
            &[
                "scenario.toml",
                "key `diffusion.beta`",
                "finite",
                "command line",
            ],
        ),
        (
            "wrong type",
            &["--set", "steps=ten"],
            &[
                "scenario.toml",
                "key `steps`",
                "expected an integer",
                "command line",
            ],
        ),
        (
            "unknown key",
            &["--set", "trust.foo=1"],
            &[
                "scenario.toml",
                "key `trust.foo`",
                "`same_bloc`",
                "command line",
            ],
        ),
        (
            "--reps 0",
            &["--reps", "0"],
            &[
                "scenario.toml",
                "key `replications`",
                "from 1 to",
                "command line",
            ],
        ),
        // Beyond TOML's integers: it would read as a type error on a
        // string.
        (
            "--seed 2^63",
            &["--seed", "9223372036854775808"],
            &[
                "--seed",
                "'9223372036854775808'",
                "from 0 to 9223372036854775807",
                "see `techdiff run --help`",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (label, extra, needles) in cases {
        failures.extend(check_run_args(label, Some(BASE), extra, needles, true));
    }
    // The embedded default scenario: the message names it.
    failures.extend(check_run_args(
        "default scenario, steps=0",
        None,
        &["--set", "steps=0"],
        &[
            "tightening.toml",
            "key `steps`",
            "from 1 to",
            "command line",
        ],
        true,
    ));
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn bad_threads() {
    let mut failures = Vec::new();
    // clap's message (the option, the value given, what is allowed), on
    // one line with the help to read.
    for value in ["0", "100000000", "abc"] {
        failures.extend(check_run_args(
            &format!("--threads {value}"),
            Some(BASE),
            &["--threads", value],
            &[
                "--threads",
                &format!("'{value}'"),
                "from 1 to 1024",
                "see `techdiff run --help`",
            ],
            true,
        ));
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// `techdiff bench` checks its whole command line and every scenario
/// before measuring anything: exit 2, one line, and no CSV written.
#[test]
fn bad_bench_args() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.toml");
    fs::write(&scenario, BASE).unwrap();
    let csv = dir.path().join("bench.csv");
    let scenario = scenario.to_str().unwrap();
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "--runs 0",
            &[scenario, "--runs", "0"],
            &["--runs", "'0'", "at least 1", "see `techdiff bench --help`"],
        ),
        // RAYON_NUM_THREADS=0 would mean every core: refused as `run`
        // refuses it.
        (
            "--threads 0",
            &[scenario, "--threads", "0"],
            &["--threads", "'0'", "from 1 to 1024"],
        ),
        (
            "--threads 100000000",
            &[scenario, "--threads", "100000000"],
            &["--threads", "'100000000'", "from 1 to 1024"],
        ),
        (
            "missing scenario",
            &["no-such.toml"],
            &["no-such.toml", "does not exist"],
        ),
        (
            "unknown key in --set",
            &[scenario, "--set", "trust.foo=1"],
            &["scenario.toml", "key `trust.foo`", "command line"],
        ),
        // The second file is checked before the first is measured.
        (
            "a bad second scenario",
            &[scenario, "no-such.toml"],
            &["no-such.toml", "does not exist"],
        ),
        // Found out before measuring, not when the CSV is written.
        (
            "--csv names a folder",
            &[scenario, "--csv", "."],
            &["command line", "--csv", "is a folder"],
        ),
    ];
    let mut failures = Vec::new();
    for (label, extra, needles) in cases {
        let mut args = os(&["bench"]);
        if !extra.contains(&"--csv") {
            args.extend(os(&["--csv", csv.to_str().unwrap()]));
        }
        args.extend(os(extra));
        let out = techdiff(dir.path(), &args);
        failures.extend(
            problems(&out, needles, Loc::NoCheck, true)
                .into_iter()
                .map(|p| format!("[{label}] {p}")),
        );
        if !out.stdout.is_empty() {
            failures.push(format!("[{label}] measured: {:?}", out.stdout));
        }
        if csv.exists() {
            failures.push(format!("[{label}] wrote {}", csv.display()));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// `run --out` may replace an earlier run's files but not a sweep's: a
/// folder with a sweep's journal or manifest is refused before anything
/// runs, and left as it was.
#[test]
fn run_out_refuses_a_sweep_folder() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.toml");
    fs::write(&scenario, BASE).unwrap();
    let run_into = |out: &Path| {
        techdiff(
            dir.path(),
            &[
                OsString::from("run"),
                scenario.clone().into(),
                "--out".into(),
                out.into(),
                "--quiet".into(),
            ],
        )
    };
    let mut failures = Vec::new();
    let sweep_files: [&[(&str, &str)]; 2] = [
        &[
            (
                "manifest.json",
                r#"{"sweep_name": "s", "status": "running"}"#,
            ),
            ("runs.jsonl", ""),
        ],
        &[("runs.jsonl", "{}\n")],
    ];
    for (k, files) in sweep_files.iter().enumerate() {
        let out = dir.path().join(format!("sweep{k}"));
        fs::create_dir(&out).unwrap();
        for (name, text) in *files {
            fs::write(out.join(name), text).unwrap();
        }
        let o = run_into(&out);
        failures.extend(
            problems(
                &o,
                &["command line", "--out", "holds a sweep"],
                Loc::NoCheck,
                true,
            )
            .into_iter()
            .map(|p| format!("[sweep folder {k}] {p}")),
        );
        let mut names: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        want.sort();
        if names != want {
            failures.push(format!("[sweep folder {k}] now holds {names:?}"));
        }
        for (name, text) in *files {
            if fs::read_to_string(out.join(name)).unwrap() != *text {
                failures.push(format!("[sweep folder {k}] {name} changed"));
            }
        }
    }
    // An earlier run's folder is not a sweep's: run twice into one.
    let again = dir.path().join("again");
    for round in 0..2 {
        let o = run_into(&again);
        if o.code != Some(0) {
            failures.push(format!(
                "[run folder, round {round}] {:?}: {}",
                o.code, o.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// `--out` naming a file is refused up front by run, sweep and merge
/// (it failed with exit 1 when the results were written, after the work).
#[test]
fn out_naming_a_file_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("scenario.toml"), BASE).unwrap();
    fs::write(
        dir.path().join("sweep.toml"),
        "scenario = \"scenario.toml\"\nreplications = 1\n[[param]]\npath = \"trust.erosion\"\nvalues = [0.1]\n",
    )
    .unwrap();
    fs::write(dir.path().join("afile"), "keep me").unwrap();
    let mut failures = Vec::new();
    for (label, args) in [
        ("run", &["run", "scenario.toml", "--quiet"][..]),
        ("sweep", &["sweep", "sweep.toml", "--quiet"]),
        // The shard is checked after --out: it need not exist.
        ("merge", &["merge", "no-such-shard"]),
    ] {
        let mut a = os(args);
        a.extend(os(&["--out", "afile"]));
        let out = techdiff(dir.path(), &a);
        failures.extend(
            problems(
                &out,
                &["command line", "--out afile", "is a file"],
                Loc::NoCheck,
                true,
            )
            .into_iter()
            .map(|p| format!("[{label}] {p}")),
        );
        if fs::read_to_string(dir.path().join("afile")).unwrap() != "keep me" {
            failures.push(format!("[{label}] changed the file"));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// Mistakes the argument parser finds are one line too, as every other
/// input error (clap's own format adds tips and usage lines), naming the
/// help to read; --help and --version still print and exit 0.
#[test]
fn command_line_mistakes_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["frobnicate"],
            &["unrecognized subcommand", "see `techdiff --help`"],
        ),
        (
            &["validate", "x.toml", "--set", "steps=2"],
            &[
                "unexpected argument '--set'",
                "see `techdiff validate --help`",
            ],
        ),
        (
            &["merge"],
            &[
                "required arguments were not provided: <DIRS>",
                "see `techdiff merge --help`",
            ],
        ),
        (
            &["sweep", "s.toml", "--shard", "-1/4"],
            &["unexpected argument '-1'", "see `techdiff sweep --help`"],
        ),
        (
            &["sweep", "s.toml", "--shard", "0/3"],
            &[
                "invalid value '0/3' for '--shard <K/N>'",
                "1 <= K <= N",
                "see `techdiff sweep --help`",
            ],
        ),
        (
            &["sweep", "s.toml", "--shard", "4/3"],
            &["invalid value '4/3' for '--shard <K/N>'", "1 <= K <= N"],
        ),
        (
            &["sweep", "s.toml", "--shard", "half"],
            &["invalid value 'half' for '--shard <K/N>'", "1 <= K <= N"],
        ),
        (
            &["bench", "--runs", "many"],
            &[
                "invalid value 'many' for '--runs <N>'",
                "see `techdiff bench --help`",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (args, needles) in cases {
        let out = techdiff(dir.path(), &os(args));
        failures.extend(
            problems(&out, needles, Loc::NoCheck, true)
                .into_iter()
                .map(|p| format!("[{}] {p}", args.join(" "))),
        );
    }
    // An argument that is not UTF-8 (the subcommand's help is looked up in
    // the arguments, which must not panic on it).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let out = techdiff(dir.path(), &[OsString::from_vec(vec![0xff, b'x'])]);
        failures.extend(
            problems(
                &out,
                &["unrecognized subcommand", "see `techdiff --help`"],
                Loc::NoCheck,
                true,
            )
            .into_iter()
            .map(|p| format!("[non-UTF-8] {p}")),
        );
    }
    for args in [&["--help"][..], &["run", "--help"], &["--version"]] {
        let out = techdiff(dir.path(), &os(args));
        if out.code != Some(0) || out.stdout.is_empty() {
            failures.push(format!(
                "[{}] {:?}: {}",
                args.join(" "),
                out.code,
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// Numbers the model cannot hold are refused, not run into silently wrong
/// results: gravity weights that overflow or underflow (a pair's link cut
/// or swamping the rest), GDPs or sector shares whose total overflows (the
/// GDP-weighted figures, or log productivity, came out 0), and initial
/// innovations worth more log productivity than the sums of the outputs
/// can hold.
#[test]
fn numbers_beyond_a_double_are_refused() {
    let mut failures = Vec::new();
    let gravity = ["--set", "network.kind=gravity"];
    for (label, extra, needles) in [
        (
            "gravity overflows",
            &[
                gravity[0],
                gravity[1],
                "--set",
                "world.country[AAA].gdp=1e200",
                "--set",
                "world.country[BBB].gdp=1e200",
            ][..],
            &[
                "key `network.kind`",
                "gravity weight of",
                "comes out as inf",
                "another unit",
            ][..],
        ),
        (
            "gravity underflows",
            &[
                gravity[0],
                gravity[1],
                "--set",
                "world.country[AAA].gdp=1e-200",
                "--set",
                "world.country[BBB].gdp=1e-200",
                "--set",
                "world.country[CCC].gdp=1e-200",
            ],
            &["key `network.kind`", "comes out as 0", "another unit"],
        ),
        (
            "GDPs add up to infinity",
            &[
                "--set",
                "world.country[AAA].gdp=1e308",
                "--set",
                "world.country[BBB].gdp=1e308",
            ],
            &["key `world`", "GDPs add up beyond", "larger unit"],
        ),
        // Log productivity came out inf, frontier gaps NaN, in the files.
        (
            "initial gains beyond 1e100",
            &[
                "--set",
                "innovation.initial=[{ sector = \"chips\", holders = [\"AAA\"], quality = 1e99, count = 20 }]",
            ],
            &[
                "key `innovation.initial`",
                "add up to 2e100",
                "at most 1e100",
            ],
        ),
        (
            "shares add up to infinity",
            &[
                "--set",
                "sector[chips].share=1e308",
                "--set",
                "sector[food].share=1e308",
            ],
            &["key `sector`", "`share` values add up beyond", "ratios"],
        ),
    ] {
        failures.extend(check_run_args(label, Some(BASE), extra, needles, true));
    }
    // Large but representable GDPs in the gravity network still run.
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.toml");
    fs::write(&scenario, BASE).unwrap();
    let mut args = vec![OsString::from("run"), scenario.into_os_string()];
    args.extend(os(&[
        "--set",
        "network.kind=gravity",
        "--set",
        "world.country[AAA].gdp=1e100",
        "--out",
        "out",
        "--quiet",
    ]));
    let out = techdiff(dir.path(), &args);
    if out.code != Some(0) {
        failures.push(format!("[large GDP] {:?}: {}", out.code, out.stderr));
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}
