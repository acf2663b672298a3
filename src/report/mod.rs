//! `techdiff report DIR`: charts and a self-contained HTML page for a run
//! folder or a sweep folder.
//!
//! Layers: [`read`] turns the folder's files into plain tables (every
//! problem an [`InputError`] naming the file); [`run`] and [`sweep`] build
//! [`chart::Figure`]s (plain data: the numbers plotted) from those tables;
//! [`chart`] draws a figure into SVG with plotters; [`html`] lays out the
//! page. [`write_report`] is the one function that writes files (through
//! [`crate::output::write_atomic`]): `DIR/report.html` and one
//! `DIR/plots/<chart>.svg` per chart.

pub mod chart;
pub mod html;
pub mod read;
pub mod run;
pub mod sweep;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, InputError};
use crate::output::write_atomic;
use chart::{Figure, short_number};
use html::{Page, Table, attr, esc, shell_line, shell_word};
use run::{Est, RunFolder, group_label};
use sweep::{SweepFolder, value_label};

/// What a results folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Run,
    Sweep,
}

/// A report made in memory.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: Kind,
    pub html: String,
    /// Each figure with its SVG document.
    pub figures: Vec<(Figure, String)>,
    pub notes: Vec<String>,
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub kind: Kind,
    pub html: PathBuf,
    pub plots: Vec<PathBuf>,
}

const FOLDER_HELP: &str = "a run folder holds manifest.json, summary.json, timeseries.csv and countries.csv (from `techdiff run`); a sweep folder holds manifest.json, points.csv and runs.csv (from `techdiff sweep`)";

/// Is `dir` a run folder or a sweep folder?
pub fn detect(dir: &Path) -> Result<Kind, InputError> {
    let shown = dir.display().to_string();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(InputError::new(&shown, "no such folder"));
        }
        Err(e) => return Err(InputError::new(&shown, format!("cannot read: {e}"))),
        Ok(m) if !m.is_dir() => {
            return Err(InputError::new(
                &shown,
                format!("not a folder: give a results folder ({FOLDER_HELP})"),
            ));
        }
        Ok(_) => {}
    }
    let manifest = dir.join("manifest.json");
    if !manifest.exists() {
        return Err(InputError::new(
            &shown,
            format!("not a techdiff results folder: no manifest.json ({FOLDER_HELP})"),
        ));
    }
    let v = read::json(&manifest, "results folder")?;
    if v.get("sweep_name").is_some() {
        Ok(Kind::Sweep)
    } else if v.get("scenario_name").is_some() {
        Ok(Kind::Run)
    } else {
        Err(InputError::new(
            manifest.display().to_string(),
            format!(
                "names neither a scenario (`scenario_name`) nor a sweep (`sweep_name`): not a techdiff results folder ({FOLDER_HELP})"
            ),
        ))
    }
}

/// Read the folder and make the report in memory.
pub fn build(dir: &Path) -> Result<Report, Error> {
    let kind = detect(dir)?;
    let (page, figures, notes) = match kind {
        Kind::Run => {
            let r = RunFolder::read(dir)?;
            let (figs, notes) = run::figures(&r);
            let figures = draw(figs)?;
            (run_page(&r, dir, &figures, &notes), figures, notes)
        }
        Kind::Sweep => {
            let s = SweepFolder::read(dir)?;
            let (figs, notes) = sweep::figures(&s);
            let figures = draw(figs)?;
            (sweep_page(&s, dir, &figures, &notes), figures, notes)
        }
    };
    Ok(Report {
        kind,
        html: page,
        figures,
        notes,
    })
}

fn draw(figs: Vec<Figure>) -> Result<Vec<(Figure, String)>, Error> {
    figs.into_iter()
        .map(|f| {
            let svg = f.svg().map_err(|e| {
                Error::output(
                    format!("plots/{}.svg", f.id),
                    std::io::Error::other(format!("drawing failed: {e}")),
                )
            })?;
            Ok((f, svg))
        })
        .collect()
}

/// Make the report of `dir` and write `report.html` and `plots/*.svg` into it.
pub fn write_report(dir: &Path) -> Result<Written, Error> {
    let report = build(dir)?;
    let mut plots = Vec::new();
    for (f, svg) in &report.figures {
        let path = dir.join("plots").join(format!("{}.svg", f.id));
        write_atomic(&path, svg.as_bytes())?;
        plots.push(path);
    }
    let html = dir.join("report.html");
    write_atomic(&html, report.html.as_bytes())?;
    Ok(Written {
        kind: report.kind,
        html,
        plots,
    })
}

/// Decimals that show `v` to 3 significant digits (at most 6).
fn decimals_for(v: f64) -> usize {
    if v == 0.0 || !v.is_finite() {
        return 2;
    }
    (2 - libm::log10(v.abs()).floor() as i32).clamp(0, 6) as usize
}

/// `2.97 [2.94, 3.00]`.
pub fn fmt_est(e: Option<Est>) -> String {
    match e {
        None => "–".into(),
        Some(e) => {
            let d = decimals_for(e.mean);
            match e.ci {
                Some((lo, hi)) => format!("{:.d$} [{:.d$}, {:.d$}]", e.mean, lo, hi),
                None => format!("{:.d$}", e.mean),
            }
        }
    }
}

fn facts_table(rows: &[(&str, String)]) -> String {
    let mut s = String::from("<table class=\"facts\">\n");
    for (k, v) in rows {
        let _ = writeln!(s, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
    }
    s.push_str("</table>\n");
    s
}

fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

/// The version of techdiff that wrote a folder, with its git revision if known.
fn version_label(version: &str, git_revision: Option<&str>) -> String {
    match git_revision {
        Some(g) => format!("{version} (git {g})"),
        None => version.to_string(),
    }
}

/// The "reproduce" and "redraw this report" rows of the facts table:
/// `reproduce` is the command that makes the folder again, `note` says what
/// comes out the same.
fn rerun_facts(reproduce: &[String], note: &str, dir: &Path) -> [(&'static str, String); 2] {
    [
        (
            "reproduce",
            format!(
                "{}<br><span class=\"small\">from the folder it was run in; {note}</span>",
                code(&shell_line(reproduce))
            ),
        ),
        (
            "redraw this report",
            code(&format!(
                "techdiff report {}",
                shell_word(&dir.display().to_string())
            )),
        ),
    ]
}

/// The two columns at the top of a page: a headline table (`table_html`)
/// under `heading` with a `note` below it, and the facts of how it was run.
fn glance_columns(heading: &str, table_html: &str, note: &str, facts: &[(&str, String)]) -> String {
    format!(
        "<div class=\"glance\">\n<div>\n<h3>{heading}</h3>\n{table_html}<p class=\"small\">{note}</p>\n</div>\n<div>\n<h3>How it was run</h3>\n{}</div>\n</div>\n",
        facts_table(facts)
    )
}

/// The appendix section that shows the input file a folder was made from
/// (`text`, as kept in manifest.json), folded.
fn source_section(id: &str, heading: &str, summary: &str, text: &str) -> String {
    format!(
        "<section id=\"{id}\">\n<h2>{heading}</h2>\n<details>\n<summary>{summary}</summary>\n<pre>{}</pre>\n</details>\n</section>\n",
        esc(text)
    )
}

fn files_section(files: &[(&str, &str)]) -> String {
    let mut s = String::from("<section id=\"files\">\n<h2>Files in this folder</h2>\n<ul>\n");
    for (f, what) in files {
        let _ = writeln!(
            s,
            "<li><a href=\"{}\">{}</a>: {}</li>",
            attr(f),
            esc(f),
            esc(what)
        );
    }
    s.push_str("<li><code>plots/</code>: every chart of this page as its own SVG file</li>\n</ul>\n</section>\n");
    s
}

fn run_page(r: &RunFolder, dir: &Path, figures: &[(Figure, String)], notes: &[String]) -> String {
    let m = &r.manifest;
    let year = r.final_year();
    let members = |g: &str| -> usize {
        if g == "all" {
            r.countries.len()
        } else if let Some(b) = g.strip_prefix("bloc:") {
            r.countries.iter().filter(|c| c.bloc == b).count()
        } else if let Some(i) = g.strip_prefix("income:") {
            r.countries.iter().filter(|c| c.income == i).count()
        } else {
            0
        }
    };
    let mut glance = String::from("<h2>At a glance</h2>\n");
    // One sentence: the world's cost and the hardest-hit group.
    if let Some((_, Some(all), _)) = r.costs.groups.iter().find(|(g, ..)| g == "all") {
        let worst = r
            .costs
            .groups
            .iter()
            .filter(|(g, ..)| g != "all")
            .filter_map(|(g, e, _)| e.map(|e| (g, e)))
            .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
        let _ = write!(
            glance,
            "<p class=\"lead\">By {year}, securitization costs the average country <strong>{}</strong> log points of productivity (about percent; 95% CI in brackets)",
            esc(&fmt_est(Some(*all)))
        );
        if let Some((g, e)) = worst {
            let _ = write!(
                glance,
                "; the hardest-hit group is <strong>{}</strong> at {}",
                esc(&group_label(g)),
                esc(&fmt_est(Some(e)))
            );
        }
        glance.push_str(".</p>\n");
    }
    let table = Table {
        class: "headline",
        header: vec![
            "group".into(),
            "<span title=\"countries in the group\">countries</span>".into(),
            format!("securitization cost {year}, log points [95% CI]"),
            "GDP-weighted [95% CI]".into(),
        ],
        rows: r
            .costs
            .groups
            .iter()
            .map(|(g, u, w)| {
                vec![
                    esc(&group_label(g)),
                    members(g).to_string(),
                    esc(&fmt_est(*u)),
                    esc(&fmt_est(*w)),
                ]
            })
            .collect(),
        numeric_from: 1,
    };
    let table_html = table.html();
    let mut origin = m.origin.clone();
    let embedded = origin.starts_with("<embedded>");
    let mut reproduce: Vec<String> = vec!["techdiff".into(), "run".into()];
    if !embedded && !origin.is_empty() {
        reproduce.push(origin.clone());
    }
    if embedded {
        origin = format!("{origin} (the default scenario built into techdiff)");
    }
    reproduce.extend(["--seed".into(), m.seed.to_string()]);
    reproduce.extend(["--reps".into(), m.replications.to_string()]);
    for o in &m.overrides {
        reproduce.extend(["--set".into(), o.clone()]);
    }
    reproduce.extend(["--out".into(), "DIR".into()]);
    let git = version_label(&m.version, m.git_revision.as_deref());
    let mut facts: Vec<(&str, String)> = vec![
        ("scenario file", code(&origin)),
        (
            "overrides",
            if m.overrides.is_empty() {
                "none".into()
            } else {
                m.overrides
                    .iter()
                    .map(|o| code(o))
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        ),
        ("seed", m.seed.to_string()),
        (
            "replications",
            format!("{} (each paired with its counterfactual)", m.replications),
        ),
        ("steps", format!("{} ({}–{})", m.steps, m.start_year, year)),
        ("countries", m.countries.to_string()),
        ("sectors", esc(&m.sectors.join(", "))),
        ("techdiff", esc(&git)),
    ];
    if let Some(t) = &m.started_at {
        let mut v = esc(t);
        if let (Some(w), Some(th)) = (m.wall_time_seconds, m.threads) {
            let _ = write!(v, " ({w:.1} s on {th} threads)");
        }
        facts.push(("run at", v));
    }
    if !m.command_line.is_empty() {
        facts.push(("command as run", code(&shell_line(&m.command_line))));
    }
    facts.extend(rerun_facts(
        &reproduce,
        "the same seed and replications give byte-identical timeseries.csv, countries.csv and summary.json at any thread count",
        dir,
    ));
    let _ = write!(
        glance,
        "<p class=\"keyfacts\">seed <strong>{}</strong> · <strong>{}</strong> replications, each paired with its counterfactual · <strong>{}</strong> steps, {}–{year} · {} countries · {} sectors · techdiff {}</p>\n<p class=\"keyfacts\">reproduce: {}</p>\n",
        m.seed,
        m.replications,
        m.steps,
        m.start_year,
        m.countries,
        m.sectors.len(),
        esc(&git),
        code(&shell_line(&reproduce))
    );
    glance.push_str(&glance_columns(
        "Securitization cost by group",
        &table_html,
        &format!(
            "100 × (counterfactual − policy) final log productivity, mean over the group's countries (or GDP-weighted); 95% t-interval over {} paired replications. From summary.json.",
            m.replications
        ),
        &facts,
    ));
    let mut appendix = String::new();
    if !m.scenario_json.is_empty() {
        appendix.push_str(&source_section(
            "scenario",
            "Scenario",
            "The scenario as run, after overrides (from manifest.json)",
            &m.scenario_json,
        ));
    }
    appendix.push_str(&files_section(&[
        (
            "manifest.json",
            "the scenario after overrides, seed, version, command line",
        ),
        (
            "summary.json",
            "final-step means and 95% CIs; securitization cost per group and country",
        ),
        (
            "timeseries.csv",
            "every metric per variant, replication, step and group",
        ),
        (
            "countries.csv",
            "final figures per country, replication and variant",
        ),
    ]));
    Page {
        title: format!("Scenario {}", m.name),
        kind: "Run report".into(),
        description: m.description.clone(),
        glance,
        figures: figures.to_vec(),
        notes: notes.to_vec(),
        appendix,
    }
    .html()
}

fn sweep_page(
    s: &SweepFolder,
    dir: &Path,
    figures: &[(Figure, String)],
    notes: &[String],
) -> String {
    let m = &s.manifest;
    let p = &s.points;
    let mut glance = String::from("<h2>At a glance</h2>\n");
    let describe_point = |pt: usize| -> String {
        p.params
            .iter()
            .zip(&p.values[pt])
            .map(|(n, v)| format!("{n} = {}", value_label(v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = Vec::new();
    for (k, label) in p.metrics.iter().enumerate() {
        let mut best: Option<(usize, f64)> = None;
        let mut worst: Option<(usize, f64)> = None;
        for pt in 0..p.values.len() {
            if let Some(c) = p.cells[pt][k] {
                if best.is_none_or(|b| c.mean < b.1) {
                    best = Some((pt, c.mean));
                }
                if worst.is_none_or(|w| c.mean > w.1) {
                    worst = Some((pt, c.mean));
                }
            }
        }
        let cell = |x: Option<(usize, f64)>| match x {
            Some((pt, v)) => format!(
                "{} <span class=\"small\">at point {pt}: {}</span>",
                esc(&short_number(v)),
                esc(&describe_point(pt))
            ),
            None => "–".into(),
        };
        rows.push(vec![code(label), cell(best), cell(worst)]);
    }
    let table = Table {
        class: "headline",
        header: vec![
            "metric".into(),
            "lowest point mean".into(),
            "highest point mean".into(),
        ],
        rows,
        numeric_from: usize::MAX,
    };
    let params = p
        .params
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let (levels, numeric) = sweep::levels(p, k);
            let vals = if m.sampled() && numeric && levels.len() > 6 {
                let nums: Vec<f64> = levels
                    .iter()
                    .filter_map(|v| v.trim().parse().ok())
                    .collect();
                let (lo, hi) = chart::value_range(nums.into_iter());
                format!(
                    "{} values in [{}, {}]",
                    levels.len(),
                    short_number(lo),
                    short_number(hi)
                )
            } else {
                levels
                    .iter()
                    .map(|l| value_label(l))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            format!("{}: {}", code(name), esc(&vals))
        })
        .collect::<Vec<_>>()
        .join("<br>");
    let git = version_label(&m.version, m.git_revision.as_deref());
    let reproduce = vec![
        "techdiff".to_string(),
        "sweep".into(),
        m.sweep_file.clone(),
        "--out".into(),
        "DIR".into(),
    ];
    let mut facts: Vec<(&str, String)> = vec![
        ("sweep file", code(&m.sweep_file)),
        ("base scenario", code(&m.scenario_file)),
        ("design", esc(&m.design)),
        ("parameters", params),
        (
            "runs",
            format!(
                "{} points × {} replications = {} runs{}",
                m.points,
                m.replications,
                m.runs,
                if m.failed > 0 {
                    format!(", <strong>{} failed</strong> (failures.csv)", m.failed)
                } else {
                    ", none failed".into()
                }
            ),
        ),
        (
            "seed",
            format!(
                "{} (every point uses the streams (seed, replication): common random numbers)",
                m.seed
            ),
        ),
        ("techdiff", esc(&git)),
    ];
    facts.extend(rerun_facts(
        &reproduce,
        "the final files do not depend on threads, interruptions or shards",
        dir,
    ));
    let _ = write!(
        glance,
        "<p class=\"keyfacts\"><strong>{}</strong> design · <strong>{}</strong> points × <strong>{}</strong> replications = {} runs{} · seed <strong>{}</strong> · techdiff {}</p>\n<p class=\"keyfacts\">reproduce: {}</p>\n",
        esc(&m.design),
        m.points,
        m.replications,
        m.runs,
        if m.failed > 0 {
            format!(" (<strong>{} failed</strong>)", m.failed)
        } else {
            String::new()
        },
        m.seed,
        esc(&git),
        code(&shell_line(&reproduce))
    );
    glance.push_str(&glance_columns(
        "Range over the design",
        &table.html(),
        "Per metric, the design points with the lowest and the highest mean over replications (points.csv).",
        &facts,
    ));
    let mut appendix = String::new();
    if !m.sweep_text.is_empty() {
        appendix.push_str(&source_section(
            "sweep-file",
            "Sweep file",
            "The sweep file as run (from manifest.json)",
            &m.sweep_text,
        ));
    }
    let mut files = vec![
        (
            "manifest.json",
            "the sweep and scenario texts, design, seed, version",
        ),
        (
            "points.csv",
            "per design point: parameters, means, sd, 95% CIs and paired differences",
        ),
        (
            "runs.csv",
            "per point and replication: parameters, status and every kept metric",
        ),
        ("failures.csv", "runs that failed, with their error"),
    ];
    if s.sensitivity.is_some() {
        files.push((
            "sensitivity.csv",
            "sensitivity indices per metric and parameter",
        ));
    }
    appendix.push_str(&files_section(&files));
    Page {
        title: format!("Sweep {}", m.name),
        kind: "Sweep report".into(),
        description: m.description.clone(),
        glance,
        figures: figures.to_vec(),
        notes: notes.to_vec(),
        appendix,
    }
    .html()
}

/// Results folders made in-process for the report's unit tests.
#[cfg(test)]
pub(crate) mod testdata {
    use std::path::{Path, PathBuf};

    use crate::output::{RunFacts, write_run};
    use crate::run::run_scenario;
    use crate::sweep::Sweep;
    use crate::sweep::execute::execute;

    pub fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Run `scenarios/<file>` with overrides into `dir`.
    pub fn run_folder(dir: &Path, file: &str, overrides: &[&str]) {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let loaded = crate::scenario::load(&repo().join("scenarios").join(file), &overrides)
            .unwrap_or_else(|e| panic!("{e}"));
        let sc = &loaded.scenario;
        let res = run_scenario(sc, sc.replications, &|| {});
        let facts = RunFacts {
            origin: format!("scenarios/{file}"),
            overrides,
            replications: sc.replications,
            threads: 1,
            wall_time_seconds: 0.5,
            started_at: "2026-01-01T00:00:00Z".into(),
            command_line: vec!["techdiff".into(), "run".into(), format!("scenarios/{file}")],
        };
        write_run(dir, sc, &loaded.table, &res, &facts).unwrap();
    }

    /// A run of the decoupling scenario (retaliation on), shortened.
    pub fn small_run(dir: &Path) {
        run_folder(
            dir,
            "decoupling.toml",
            &["steps=6", "replications=3", "innovation.per_step=60"],
        );
    }

    /// A small synthetic scenario (no coordinates) for sweeps.
    pub const TINY: &str = r#"name = "tiny"
steps = 6
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

    /// Run the sweep `text` (its scenario is `base.toml` = [`TINY`]) into
    /// `dir/out`; returns that folder.
    pub fn sweep_folder(dir: &Path, text: &str) -> PathBuf {
        std::fs::write(dir.join("base.toml"), TINY).unwrap();
        let file = dir.join("sweep.toml");
        std::fs::write(&file, text).unwrap();
        let spec = Sweep::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.join("out");
        execute(&spec, &out, None, false, &|| {}, &|_| {}).unwrap();
        out
    }

    /// A grid sweep: a list parameter and two numeric ones, 3 replications.
    pub const GRID: &str = r#"scenario = "base.toml"
replications = 3
design = "grid"
seed = 9
metrics = ["securitization_cost@all", "securitization_cost@income:low", "mean_trust@bloc:B"]
[[param]]
name = "positive_list"
path = "policy.cooperation.positive_list"
values = [[], ["health"]]
[[param]]
name = "scope"
path = "policy.export_control[r].sectors.chips"
min = 0.0
max = 0.8
steps = 3
[[param]]
name = "licence"
path = "policy.export_control[r].licence_rate"
values = [0.1, 0.6]
"#;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `build` fails with an input error whose message holds every part.
    fn refused(dir: &Path, parts: &[&str]) {
        match build(dir) {
            Err(Error::Input(e)) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "one line: {msg}");
                for p in parts {
                    assert!(msg.contains(p), "`{p}` not in: {msg}");
                }
            }
            Err(e) => panic!("not an input error: {e}"),
            Ok(_) => panic!("accepted {}", dir.display()),
        }
    }

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    fn edit(path: &Path, f: impl Fn(String) -> String) {
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, f(text)).unwrap();
    }

    #[test]
    fn bad_folders_are_refused_with_one_message_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        testdata::small_run(&good);
        assert!(build(&good).is_ok());
        let case = |name: &str| {
            let d = tmp.path().join(name);
            copy(&good, &d);
            d
        };

        refused(&tmp.path().join("nothing"), &["nothing", "no such folder"]);
        refused(
            &good.join("summary.json"),
            &["summary.json", "not a folder"],
        );
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        refused(&empty, &["empty", "no manifest.json", "timeseries.csv"]);

        let d = case("torn_manifest");
        std::fs::write(
            d.join("manifest.json"),
            "{\n  \"scenario_name\": \"x\",\n  \"seed\": ",
        )
        .unwrap();
        refused(&d, &["manifest.json:3:", "malformed JSON"]);

        let d = case("other_json");
        std::fs::write(d.join("manifest.json"), "{\"name\": 1}").unwrap();
        refused(&d, &["manifest.json", "neither a scenario"]);

        let d = case("no_seed");
        edit(&d.join("manifest.json"), |t| {
            t.replace("\"seed\"", "\"seeds\"")
        });
        refused(&d, &["manifest.json", "key `seed`", "it is missing"]);

        let d = case("no_summary");
        std::fs::remove_file(d.join("summary.json")).unwrap();
        refused(&d, &["summary.json", "missing"]);

        let d = case("bad_cost");
        edit(&d.join("summary.json"), |t| {
            t.replacen(
                "\"securitization_cost\": {",
                "\"securitization_cost\": 3, \"was\": {",
                1,
            )
        });
        refused(
            &d,
            &["summary.json", "key `securitization_cost`", "an object"],
        );

        let d = case("bad_value");
        edit(&d.join("timeseries.csv"), |t| {
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            let mut cells: Vec<String> = lines[4].split(',').map(str::to_string).collect();
            cells[6] = "lots".into();
            lines[4] = cells.join(",");
            lines.join("\n") + "\n"
        });
        refused(
            &d,
            &[
                "timeseries.csv",
                "line 5",
                "column `value`",
                "`lots`",
                "not a number",
            ],
        );

        let d = case("short_row");
        edit(&d.join("timeseries.csv"), |t| {
            t.replacen("\npolicy,0,0,", "\npolicy,0\npolicy,0,0,", 1)
        });
        refused(&d, &["timeseries.csv", "line 2", "2 fields", "7"]);

        let d = case("bad_variant");
        edit(&d.join("timeseries.csv"), |t| {
            t.replacen("\npolicy,", "\npolcy,", 1)
        });
        refused(&d, &["timeseries.csv", "line 2", "`polcy`"]);

        let d = case("bad_replication");
        edit(&d.join("timeseries.csv"), |t| {
            t.replacen("\npolicy,0,", "\npolicy,7,", 1)
        });
        refused(&d, &["timeseries.csv", "line 2", "replication 7", "3"]);

        let d = case("no_value_column");
        edit(&d.join("timeseries.csv"), |t| {
            t.replacen(",value\n", ",val\n", 1)
        });
        refused(&d, &["timeseries.csv", "no `value` column"]);

        let d = case("binary");
        std::fs::write(d.join("countries.csv"), b"code\xff\xfe\0\n").unwrap();
        refused(&d, &["countries.csv", "not UTF-8"]);

        let d = case("bad_lat");
        edit(&d.join("countries.csv"), |t| {
            t.replacen(",38.8895,", ",138.8895,", 1)
        });
        refused(&d, &["countries.csv", "column `lat`", "outside"]);
    }

    #[test]
    fn unfinished_sweeps_and_broken_sweep_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let good = testdata::sweep_folder(tmp.path(), testdata::GRID);
        assert_eq!(detect(&good).unwrap(), Kind::Sweep);
        assert!(build(&good).is_ok());
        let case = |name: &str| {
            let d = tmp.path().join(name);
            copy(&good, &d);
            d
        };
        let d = case("running");
        edit(&d.join("manifest.json"), |t| {
            t.replace("\"status\": \"complete\"", "\"status\": \"running\"")
        });
        refused(&d, &["manifest.json", "`running`", "--resume"]);
        let d = case("shard");
        edit(&d.join("manifest.json"), |t| {
            t.replace("\"status\": \"complete\"", "\"status\": \"shard complete\"")
                .replace("\"shard\": null", "\"shard\": \"1/2\"")
        });
        refused(&d, &["manifest.json", "techdiff merge"]);
        let d = case("no_points");
        std::fs::remove_file(d.join("points.csv")).unwrap();
        refused(&d, &["points.csv", "missing", "sweep folder"]);
        let d = case("no_metric");
        edit(&d.join("points.csv"), |t| {
            t.replacen("mean_trust@bloc:B:mean", "trust:mean", 1)
        });
        refused(&d, &["points.csv", "no `mean_trust@bloc:B:mean` column"]);
        let d = case("runs_outside");
        edit(&d.join("runs.csv"), |t| t.replacen("\n0,0,", "\n99,0,", 1));
        refused(&d, &["runs.csv", "line 2", "point 99"]);
    }

    #[test]
    fn reports_are_written_whole_and_are_self_contained() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        testdata::small_run(dir);
        let w = write_report(dir).unwrap();
        assert_eq!(w.kind, Kind::Run);
        let html = std::fs::read_to_string(&w.html).unwrap();
        assert_eq!(
            w.plots.len(),
            html.matches("<figure class=\"chart\"").count()
        );
        assert_eq!(w.plots.len(), html.matches("<svg").count());
        for p in &w.plots {
            let svg = std::fs::read_to_string(p).unwrap();
            assert!(html.contains(&svg), "{} is inline", p.display());
        }
        // No script, no external resource of any kind.
        for banned in [
            "<script", "<link", "<img", "@import", "url(", "src=", "http://", "https://",
        ] {
            let found = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(!found.contains(banned), "{banned}");
        }
        // The first screen: name, headline costs, seed, the command.
        let glance = &html[..html.find("<nav>").unwrap()];
        for part in [
            "Scenario decoupling",
            "At a glance",
            "bloc B",
            "<th>seed</th><td>1</td>",
            "techdiff run scenarios/decoupling.toml --seed 1 --reps 3 --set steps=6 --set replications=3 --set innovation.per_step=60 --out DIR",
        ] {
            assert!(glance.contains(part), "{part}");
        }
        // Drawing again gives the same bytes; no temporary file is left.
        let again = build(dir).unwrap();
        assert_eq!(again.html, html);
        let leftovers = std::fs::read_dir(dir.join("plots"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn data_strings_are_escaped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        testdata::small_run(dir);
        edit(&dir.join("manifest.json"), |t| {
            t.replacen(
                "\"description\": \"",
                "\"description\": \"<script>alert(1)</script> & ",
                1,
            )
        });
        let html = build(dir).unwrap().html;
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; "));
    }
}
