//! Exporters (results in, bytes out) and the one place that writes files:
//! atomically, through a temporary file in the target folder and a rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, InputError};
use crate::model::Scenario;
use crate::run::RunResults;
use crate::sim::Variant;
use crate::sim::metrics::{GroupKind, Metric};
use crate::stats::Estimate;

/// Write `bytes` to `path` atomically: a reader sees the old file or the
/// whole new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".techdiff-").suffix(".tmp");
    // Results are ordinary files: readable as the umask allows, not the
    // owner-only mode temporary files get by default.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::output(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::output(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::output(path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::output(path, e.error))?;
    Ok(())
}

/// `x` as the CSV files write it: the shortest decimal that reads back as
/// the same `f64`, in exponent form (`1.5e-20`, `2.5e21`) below 1e-5 and
/// from 1e16 in magnitude, where the JSON files (serde_json) switch too.
/// Plain `Display` never switches: 1e-300 would take 302 characters.
pub fn number(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && a.is_finite() && !(1e-5..1e16).contains(&a) {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// The year label of a step.
fn year(sc: &Scenario, step: u32) -> i64 {
    sc.start_year + i64::from(step)
}

/// `timeseries.csv`: variant,replication,step,year,group,metric,value (long
/// format; undefined values are left out).
pub fn timeseries_csv(sc: &Scenario, res: &RunResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "variant",
        "replication",
        "step",
        "year",
        "group",
        "metric",
        "value",
    ])
    .expect("writing to memory");
    let names: Vec<(String, String)> = res
        .layout
        .series
        .iter()
        .map(|s| (res.layout.groups[s.group].name.clone(), s.metric_name()))
        .collect();
    for run in &res.runs {
        let variant = run.variant.name();
        let rep = run.replication.to_string();
        for rec in &run.series {
            let step = rec.step.to_string();
            let yr = year(sc, rec.step).to_string();
            for (v, (group, metric)) in rec.values.iter().zip(&names) {
                if v.is_nan() {
                    continue;
                }
                w.write_record([variant, &rep, &step, &yr, group, metric, &number(*v)])
                    .expect("writing to memory");
            }
        }
    }
    w.into_inner().expect("writing to memory")
}

fn opt(v: f64) -> String {
    if v.is_nan() { String::new() } else { number(v) }
}

/// `countries.csv`: final per-country figures per replication and variant,
/// and the country's coordinates (empty where the scenario has none).
pub fn countries_csv(sc: &Scenario, res: &RunResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "variant",
        "replication",
        "code",
        "name",
        "bloc",
        "income",
        "log_productivity",
        "growth",
        "frontier_gap",
        "coinvention_share",
        "adoption_share",
        "retaliations_opened",
        "lat",
        "lon",
    ])
    .expect("writing to memory");
    let coord = |v: Option<f64>| v.map(number).unwrap_or_default();
    for run in &res.runs {
        for (c, o) in sc.world.countries.iter().zip(&run.countries) {
            w.write_record([
                run.variant.name(),
                &run.replication.to_string(),
                &c.code,
                &c.name,
                &sc.world.blocs[c.bloc],
                c.income.as_str(),
                &number(o.log_productivity),
                &number(o.growth),
                &number(o.frontier_gap),
                &opt(o.coinvention_share),
                &opt(o.adoption_share),
                &o.retaliations_opened.to_string(),
                &coord(c.lat),
                &coord(c.lon),
            ])
            .expect("writing to memory");
        }
    }
    w.into_inner().expect("writing to memory")
}

/// Per group: final values over replications of one series of one variant.
fn finals(res: &RunResults, variant: Variant, series: usize) -> Vec<f64> {
    (0..res.replications)
        .map(|r| {
            res.get(variant, r)
                .series
                .last()
                .map_or(f64::NAN, |s| s.values[series])
        })
        .collect()
}

/// Securitization cost of a group per replication, in log points:
/// 100 * (l_cf(T) - l(T)), averaged over the group's members (or GDP-weighted).
pub fn securitization_cost(
    sc: &Scenario,
    res: &RunResults,
    members: &[usize],
    gdp_weighted: bool,
) -> Vec<f64> {
    (0..res.replications)
        .map(|r| {
            let p = &res.get(Variant::Policy, r).countries;
            let c = &res.get(Variant::Counterfactual, r).countries;
            let weight = |i: usize| {
                if gdp_weighted {
                    sc.world.countries[i].gdp
                } else {
                    1.0
                }
            };
            let wsum: f64 = members.iter().map(|&i| weight(i)).sum();
            100.0
                * members
                    .iter()
                    .map(|&i| weight(i) * (c[i].log_productivity - p[i].log_productivity))
                    .sum::<f64>()
                / wsum
        })
        .collect()
}

#[derive(Serialize)]
struct EstimateJson {
    mean: f64,
    sd: Option<f64>,
    n: usize,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
}

fn est_json(values: &[f64]) -> Value {
    match Estimate::of(values) {
        None => Value::Null,
        Some(e) => serde_json::to_value(EstimateJson {
            mean: e.mean,
            sd: e.sd,
            n: e.n,
            ci95_low: e.ci95.map(|c| c.0),
            ci95_high: e.ci95.map(|c| c.1),
        })
        .expect("serialisable"),
    }
}

/// The summary: per variant, group and metric, the final-step mean and 95%
/// CI over replications; the paired securitization cost per group and per
/// country; total retaliations.
pub fn summary(sc: &Scenario, res: &RunResults) -> Value {
    let layout = &res.layout;
    let mut metrics = Map::new();
    for variant in [Variant::Policy, Variant::Counterfactual] {
        let mut groups = Map::new();
        for (idx, s) in layout.series.iter().enumerate() {
            let g = &layout.groups[s.group].name;
            let entry = groups
                .entry(g.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            entry
                .as_object_mut()
                .expect("object")
                .insert(s.metric_name(), est_json(&finals(res, variant, idx)));
        }
        // Retaliations opened over the whole run.
        if let Some(idx) = layout.find("all", "retaliations_opened") {
            let totals: Vec<f64> = (0..res.replications)
                .map(|r| {
                    res.get(variant, r)
                        .series
                        .iter()
                        .map(|s| s.values[idx])
                        .sum()
                })
                .collect();
            groups
                .get_mut("all")
                .and_then(Value::as_object_mut)
                .expect("group all")
                .insert("retaliations_opened_total".into(), est_json(&totals));
        }
        metrics.insert(variant.name().into(), Value::Object(groups));
    }
    let mut cost = Map::new();
    let mut cost_weighted = Map::new();
    for g in &layout.groups {
        if let GroupKind::Countries(members) = &g.kind {
            if members.is_empty() {
                continue;
            }
            cost.insert(
                g.name.clone(),
                est_json(&securitization_cost(sc, res, members, false)),
            );
            cost_weighted.insert(
                g.name.clone(),
                est_json(&securitization_cost(sc, res, members, true)),
            );
        }
    }
    let mut countries = Map::new();
    for (i, c) in sc.world.countries.iter().enumerate() {
        countries.insert(
            c.code.clone(),
            json!({
                "securitization_cost": est_json(&securitization_cost(sc, res, &[i], false)),
                "log_productivity": est_json(&(0..res.replications).map(|r| res.get(Variant::Policy, r).countries[i].log_productivity).collect::<Vec<_>>()),
            }),
        );
    }
    json!({
        "scenario": sc.name,
        "seed": sc.seed,
        "replications": res.replications,
        "steps": sc.steps,
        "final_year": year(sc, sc.steps),
        "units": {
            "securitization_cost": "log points: 100 * (counterfactual - policy) final log productivity; about percent",
            "ci95": "95% t-interval over replications (paired differences for securitization_cost)",
        },
        "securitization_cost": Value::Object(cost),
        "securitization_cost_gdp_weighted": Value::Object(cost_weighted),
        "metrics": Value::Object(metrics),
        "countries": Value::Object(countries),
    })
}

/// The headline table printed after a run.
pub fn summary_table(sc: &Scenario, res: &RunResults) -> String {
    let layout = &res.layout;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header(vec![
        "group",
        "log productivity",
        "securitization cost (log pts, 95% CI)",
        "co-invention share",
        "diffusion lag (steps)",
        "affected economies",
        "retaliations",
    ]);
    let fmt = |v: Option<Estimate>, digits: usize| match v {
        Some(e) => format!("{:.*}", digits, e.mean),
        None => "-".into(),
    };
    for g in &layout.groups {
        let GroupKind::Countries(members) = &g.kind else {
            continue;
        };
        if members.is_empty() {
            continue;
        }
        let get = |metric: Metric| {
            layout
                .find(&g.name, metric.name())
                .and_then(|idx| Estimate::of(&finals(res, Variant::Policy, idx)))
        };
        let cost = Estimate::of(&securitization_cost(sc, res, members, false));
        let cost_text = match cost {
            Some(e) => match e.ci95 {
                Some((lo, hi)) => format!("{:.3} [{:.3}, {:.3}]", e.mean, lo, hi),
                None => format!("{:.3}", e.mean),
            },
            None => "-".into(),
        };
        let retaliations = layout.find(&g.name, "retaliations_opened").and_then(|idx| {
            Estimate::of(
                &(0..res.replications)
                    .map(|r| {
                        res.get(Variant::Policy, r)
                            .series
                            .iter()
                            .map(|s| s.values[idx])
                            .sum()
                    })
                    .collect::<Vec<f64>>(),
            )
        });
        table.add_row(vec![
            format!("{} ({})", g.name, members.len()),
            fmt(get(Metric::LogProductivity), 4),
            cost_text,
            fmt(get(Metric::CoinventionShare), 4),
            fmt(get(Metric::DiffusionLag), 2),
            fmt(get(Metric::AffectedEconomies), 1),
            fmt(retaliations, 1),
        ]);
    }
    table.to_string()
}

/// Facts a reader needs to reproduce a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunFacts {
    pub origin: String,
    pub overrides: Vec<String>,
    pub replications: u32,
    pub threads: usize,
    pub wall_time_seconds: f64,
    pub started_at: String,
    pub command_line: Vec<String>,
}

pub fn manifest(sc: &Scenario, table: &toml::Table, facts: &RunFacts) -> Value {
    json!({
        "techdiff_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("TECHDIFF_GIT_REVISION"),
        "results_generation": crate::RESULTS_GENERATION,
        "scenario_name": sc.name,
        "description": sc.description,
        "scenario_origin": facts.origin,
        "overrides": facts.overrides,
        "seed": sc.seed,
        "replications": facts.replications,
        "steps": sc.steps,
        "start_year": sc.start_year,
        "countries": sc.world.len(),
        "sectors": sc.sectors.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "threads": facts.threads,
        "wall_time_seconds": facts.wall_time_seconds,
        "started_at": facts.started_at,
        "command_line": facts.command_line,
        "scenario": serde_json::to_value(table).unwrap_or(Value::Null),
        "files": {
            "timeseries.csv": "variant,replication,step,year,group,metric,value (long format)",
            "countries.csv": "final per-country figures per replication and variant",
            "summary.json": "final-step means and 95% CIs; paired securitization cost per group and country",
        },
    })
}

/// Write every output file of a run into `dir`.
pub fn write_run(
    dir: &Path,
    sc: &Scenario,
    table: &toml::Table,
    res: &RunResults,
    facts: &RunFacts,
) -> Result<Vec<PathBuf>, Error> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("timeseries.csv", timeseries_csv(sc, res)),
        ("countries.csv", countries_csv(sc, res)),
        ("summary.json", pretty(&summary(sc, res))),
        ("manifest.json", pretty(&manifest(sc, table, facts))),
    ];
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

pub fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(v).expect("serialisable");
    s.push(b'\n');
    s
}

/// A run may write into a new folder or over an earlier run's, but not
/// into a sweep's (its journal `runs.jsonl`, or a manifest naming a sweep):
/// the run's files would replace the sweep's manifest.
pub fn check_run_dir(dir: &Path) -> Result<(), InputError> {
    check_out_folder(dir)?;
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap_or_default();
    let names_sweep =
        serde_json::from_slice::<Value>(&manifest).is_ok_and(|m| m.get("sweep_name").is_some());
    if names_sweep || dir.join("runs.jsonl").exists() {
        return Err(InputError::new(
            "command line",
            format!(
                "--out {} holds a sweep; a run writes into a new folder or an earlier run's",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// `--out` names a folder, new or not, never a file (which would fail only
/// when the results are written, after the work).
pub fn check_out_folder(dir: &Path) -> Result<(), InputError> {
    if dir.exists() && !dir.is_dir() {
        return Err(InputError::new(
            "command line",
            format!("--out {} is a file; name a folder", dir.display()),
        ));
    }
    Ok(())
}

/// `results/<scenario name>/<UTC time>-s<seed>`, made unique with a suffix.
pub fn default_run_dir(sc: &Scenario) -> PathBuf {
    default_dir(&sc.name, sc.seed, None)
}

/// `results/<name>/<UTC time>-s<seed>[-<tag>]`, made unique with a suffix.
pub fn default_dir(name: &str, seed: u64, tag: Option<String>) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let base = PathBuf::from("results").join(name);
    let tag = tag.map(|t| format!("-{t}")).unwrap_or_default();
    let mut dir = base.join(format!("{stamp}-s{seed}{tag}"));
    let mut k = 2;
    while dir.exists() {
        dir = base.join(format!("{stamp}-s{seed}{tag}-{k}"));
        k += 1;
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_switch_to_exponent_form_where_the_json_does() {
        assert_eq!(number(1e-300), "1e-300");
        assert_eq!(number(-1.5e-6), "-1.5e-6");
        assert_eq!(number(2.5e21), "2.5e21");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(0.00001), "0.00001");
        assert_eq!(number(1234.5), "1234.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::INFINITY), "inf");
        let mut x = 3.7e-12_f64;
        while x < 1e22 {
            for v in [x, -x, x.next_up(), x.next_down()] {
                let text = number(v);
                assert_eq!(text.parse::<f64>(), Ok(v), "{text} reads back");
                let json = serde_json::to_string(&v).expect("finite");
                assert_eq!(text.contains('e'), json.contains('e'), "{text} vs {json}");
                assert!(text.len() <= 24, "{text}");
            }
            x *= 1.7;
        }
    }
}
