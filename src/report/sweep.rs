//! A sweep folder (`techdiff sweep`): points.csv, runs.csv, sensitivity.csv
//! and the manifest read into plain tables, and the sweep's figures.

use std::path::Path;

use super::chart::{
    Bar, BarPanel, BarSeries, Figure, HeatPanel, Key, LegendEntry, Marks, Panel, Point, Series,
    XAxis, XyPanel, value_range,
};
use super::read::{Csv, Json, json};
use super::run::group_label;
use crate::error::InputError;
use crate::stats::Estimate;

const WHAT: &str = "sweep folder";

#[derive(Debug, Clone, PartialEq)]
pub struct SweepManifest {
    pub name: String,
    pub description: String,
    pub design: String,
    pub points: u64,
    pub replications: u64,
    pub runs: u64,
    pub seed: u64,
    pub sweep_file: String,
    pub sweep_text: String,
    pub scenario_file: String,
    pub metrics: Vec<String>,
    pub version: String,
    pub git_revision: Option<String>,
    pub failed: u64,
    pub notes: Vec<String>,
}

/// A metric's point estimate with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub mean: f64,
    pub ci: Option<(f64, f64)>,
}

/// points.csv: per point, the parameter values (as written) and, per
/// metric, the mean and 95% interval over replications.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    pub params: Vec<String>,
    pub metrics: Vec<String>,
    /// `values[point][param]`.
    pub values: Vec<Vec<String>>,
    /// `cells[point][metric]`.
    pub cells: Vec<Vec<Option<Cell>>>,
}

/// runs.csv: per point and replication, the kept metrics (None: failed or
/// undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct Runs {
    /// `values[point][replication][metric]`.
    pub values: Vec<Vec<Vec<Option<f64>>>>,
}

/// One row of sensitivity.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub metric: String,
    pub parameter: String,
    /// Sobol: first order; Morris: mu*.
    pub a: Bar,
    /// Sobol: total; Morris: sigma.
    pub b: Bar,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    pub sobol: bool,
    pub rows: Vec<Index>,
}

#[derive(Debug, Clone)]
pub struct SweepFolder {
    pub manifest: SweepManifest,
    pub points: Points,
    pub runs: Runs,
    pub sensitivity: Option<Sensitivity>,
}

impl SweepManifest {
    pub fn read(dir: &Path) -> Result<SweepManifest, InputError> {
        let path = dir.join("manifest.json");
        let v = json(&path, WHAT)?;
        let file = path.display().to_string();
        let j = Json::new(&file, &v);
        let run = v.get("run").cloned().unwrap_or_default();
        let status = run.get("status").and_then(|s| s.as_str()).unwrap_or("");
        if status != "complete" {
            let hint = if v.get("shard").and_then(|s| s.as_str()).is_some() {
                "this folder is one shard of a sweep: combine the shards with `techdiff merge DIR...` and report on the merged folder"
            } else {
                "the sweep has not finished: finish it with `techdiff sweep FILE --resume DIR`"
            };
            return Err(InputError::new(
                &file,
                format!("sweep status is `{status}`, not `complete`: {hint}"),
            )
            .with_key("run.status"));
        }
        Ok(SweepManifest {
            name: j.str("sweep_name")?.to_string(),
            description: j.opt_str("description")?.unwrap_or_default().to_string(),
            design: j.str("design")?.to_string(),
            points: j.u64("points")?,
            replications: j.u64("replications")?,
            runs: j.u64("runs")?,
            seed: j.u64("seed")?,
            sweep_file: j.opt_str("sweep_file")?.unwrap_or_default().to_string(),
            sweep_text: j.opt_str("sweep_text")?.unwrap_or_default().to_string(),
            scenario_file: j.opt_str("scenario_file")?.unwrap_or_default().to_string(),
            metrics: j.strings("metrics")?,
            version: j
                .opt_str("techdiff_version")?
                .unwrap_or("unknown")
                .to_string(),
            git_revision: j.opt_str("git_revision")?.map(str::to_string),
            failed: run.get("failed").and_then(|f| f.as_u64()).unwrap_or(0),
            notes: run
                .get("notes")
                .and_then(|n| n.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    pub fn sampled(&self) -> bool {
        matches!(self.design.as_str(), "lhs" | "sobol" | "morris")
    }
}

impl Points {
    pub fn read(dir: &Path, m: &SweepManifest) -> Result<Points, InputError> {
        let csv = Csv::read(&dir.join("points.csv"), WHAT, &["point", "runs_ok"])?;
        let runs_ok = csv.col("runs_ok")?;
        if csv.col("point")? != 0 || runs_ok == 0 {
            return Err(InputError::new(
                &csv.file,
                "expected the columns point, the parameters, runs_ok, then the metrics",
            ));
        }
        let params: Vec<String> = csv.header[1..runs_ok].to_vec();
        let mut cols = Vec::new();
        for metric in &m.metrics {
            let c = |suffix: &str| csv.col(&format!("{metric}:{suffix}"));
            cols.push((c("mean")?, c("ci95_low")?, c("ci95_high")?));
        }
        let mut values = Vec::new();
        let mut cells = Vec::new();
        for (i, row) in csv.rows.iter().enumerate() {
            if csv.u64(row, 0)? != i as u64 {
                return Err(csv.error(
                    row.0,
                    format!("expected point {i}: points are numbered from 0 in order"),
                ));
            }
            values.push((1..runs_ok).map(|c| csv.str(row, c).to_string()).collect());
            let mut r = Vec::new();
            for &(mean, lo, hi) in &cols {
                r.push(match csv.opt_f64(row, mean)? {
                    None => None,
                    Some(mean) => Some(Cell {
                        mean,
                        ci: match (csv.opt_f64(row, lo)?, csv.opt_f64(row, hi)?) {
                            (Some(l), Some(h)) => Some((l, h)),
                            _ => None,
                        },
                    }),
                });
            }
            cells.push(r);
        }
        if values.len() as u64 != m.points {
            return Err(InputError::new(
                &csv.file,
                format!(
                    "{} points, but manifest.json says {}",
                    values.len(),
                    m.points
                ),
            ));
        }
        Ok(Points {
            params,
            metrics: m.metrics.clone(),
            values,
            cells,
        })
    }
}

impl Runs {
    pub fn read(dir: &Path, m: &SweepManifest, points: &Points) -> Result<Runs, InputError> {
        let csv = Csv::read(
            &dir.join("runs.csv"),
            WHAT,
            &["point", "replication", "status"],
        )?;
        let (cp, cr, cs) = (
            csv.col("point")?,
            csv.col("replication")?,
            csv.col("status")?,
        );
        let metric_cols = m
            .metrics
            .iter()
            .map(|x| csv.col(x))
            .collect::<Result<Vec<_>, _>>()?;
        let reps = m.replications as usize;
        let mut values = vec![vec![vec![None; m.metrics.len()]; reps]; points.values.len()];
        // Every run has one row: a missing one means the file was cut or
        // edited (a failed run has its row too, with status `failed`).
        let mut seen = vec![vec![false; reps]; points.values.len()];
        for row in &csv.rows {
            let p = csv.u64(row, cp)? as usize;
            let r = csv.u64(row, cr)? as usize;
            if p >= values.len() || r >= reps {
                return Err(csv.error(
                    row.0,
                    format!("(point {p}, replication {r}) is outside the design of {} points x {reps} replications", values.len()),
                ));
            }
            if std::mem::replace(&mut seen[p][r], true) {
                return Err(csv.error(
                    row.0,
                    format!("(point {p}, replication {r}) has a row already"),
                ));
            }
            match csv.str(row, cs) {
                "ok" => {}
                "failed" => continue,
                other => {
                    return Err(csv.error(
                        row.0,
                        format!(
                            "column `status`: `{}` is not `ok` or `failed`",
                            super::html::clip(other, 40)
                        ),
                    ));
                }
            }
            for (k, &c) in metric_cols.iter().enumerate() {
                values[p][r][k] = csv.opt_f64(row, c)?;
            }
        }
        let missing = seen.iter().flatten().filter(|&&s| !s).count();
        if missing > 0 {
            return Err(InputError::new(
                &csv.file,
                format!(
                    "{missing} of the {} runs ({} points x {reps} replications) have no row: the file is incomplete",
                    values.len() * reps,
                    values.len()
                ),
            ));
        }
        Ok(Runs { values })
    }
}

/// The sensitivity.csv columns of the two indices and their 95% intervals:
/// first-order and total (Sobol) or mu* and sigma (Morris).
fn index_columns(sobol: bool) -> [&'static str; 6] {
    if sobol {
        [
            "first_order",
            "first_order_ci95_low",
            "first_order_ci95_high",
            "total",
            "total_ci95_low",
            "total_ci95_high",
        ]
    } else {
        [
            "mu_star",
            "mu_star_ci95_low",
            "mu_star_ci95_high",
            "sigma",
            "sigma_ci95_low",
            "sigma_ci95_high",
        ]
    }
}

impl Sensitivity {
    pub fn read(dir: &Path, m: &SweepManifest) -> Result<Option<Sensitivity>, InputError> {
        let sobol = match m.design.as_str() {
            "sobol" => true,
            "morris" => false,
            _ => return Ok(None),
        };
        let names = index_columns(sobol);
        let csv = Csv::read(
            &dir.join("sensitivity.csv"),
            WHAT,
            &["metric", "parameter", names[0], names[3]],
        )?;
        // Morris intervals came later: older folders have none.
        let c = names.map(|n| csv.column(n));
        let (cm, cp) = (csv.col("metric")?, csv.col("parameter")?);
        let mut rows = Vec::new();
        for row in &csv.rows {
            let get = |i: usize| -> Result<Option<f64>, InputError> {
                match c[i] {
                    Some(col) => csv.opt_f64(row, col),
                    None => Ok(None),
                }
            };
            let bar = |i: usize| -> Result<Bar, InputError> {
                let value = get(i)?
                    .ok_or_else(|| csv.error(row.0, format!("column `{}` is empty", names[i])))?;
                let ci = match (get(i + 1)?, get(i + 2)?) {
                    (Some(l), Some(h)) if l.is_finite() && h.is_finite() => Some((l, h)),
                    _ => None,
                };
                Ok(Bar { value, ci })
            };
            rows.push(Index {
                metric: csv.str(row, cm).to_string(),
                parameter: csv.str(row, cp).to_string(),
                a: bar(0)?,
                b: bar(3)?,
            });
        }
        Ok(Some(Sensitivity { sobol, rows }))
    }
}

impl SweepFolder {
    pub fn read(dir: &Path) -> Result<SweepFolder, InputError> {
        let manifest = SweepManifest::read(dir)?;
        let points = Points::read(dir, &manifest)?;
        let runs = Runs::read(dir, &manifest, &points)?;
        let sensitivity = Sensitivity::read(dir, &manifest)?;
        Ok(SweepFolder {
            manifest,
            points,
            runs,
            sensitivity,
        })
    }
}

/// `securitization_cost@income:low` -> (`securitization_cost`, `income:low`).
pub fn split_metric(label: &str) -> (&str, &str) {
    label.split_once('@').unwrap_or((label, "all"))
}

/// The axis label of a metric, with its unit.
pub fn metric_unit(metric: &str) -> String {
    let (base, total) = match metric.strip_suffix("_total") {
        Some(b) => (b, true),
        None => (metric, false),
    };
    let (base, weighted) = match base.strip_suffix("_gdp_weighted") {
        Some(b) => (b, " (GDP-weighted)"),
        None => (base, ""),
    };
    let unit = match base {
        "securitization_cost" => "securitization cost (log points)".to_string(),
        "log_productivity" => "log productivity (ln)".to_string(),
        "log_productivity_growth" => "log productivity growth (ln per year)".to_string(),
        "frontier_gap" => "gap to the frontier (ln)".to_string(),
        "mean_trust" => "mean trust (0 to 1)".to_string(),
        "retaliations_opened" => "counter-regimes opened (count)".to_string(),
        "affected_economies" => "targeted countries (count)".to_string(),
        "controllers" => "controlling countries (count)".to_string(),
        "active_regimes" => "regimes in force (count)".to_string(),
        b if b.starts_with("diffusion_lag") => format!("{} (years)", b.replace('_', " ")),
        b if b.ends_with("_share") => format!(
            "{} (0 to 1)",
            b.replace('_', " ").replace("coinvention", "co-invention")
        ),
        b => b.replace('_', " "),
    };
    let when = if total {
        ", sum over the run"
    } else {
        ", final year"
    };
    format!("{unit}{weighted}{when}")
}

/// A parameter value as a short label: TOML lists without quotes.
pub fn value_label(v: &str) -> String {
    if v == "[]" {
        return "[] (none)".into();
    }
    // Sampled values print with every digit: 3 significant ones will do.
    if v.len() > 8
        && let Ok(x) = v.trim().parse::<f64>()
    {
        return super::chart::short_number(x);
    }
    v.replace('"', "")
}

/// An identifier safe for file names and HTML ids.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The distinct values of a parameter in order (numeric values sorted),
/// and whether they are all numbers.
pub fn levels(points: &Points, param: usize) -> (Vec<String>, bool) {
    let mut seen: Vec<String> = Vec::new();
    for v in &points.values {
        if !seen.contains(&v[param]) {
            seen.push(v[param].clone());
        }
    }
    let numeric = seen
        .iter()
        .all(|v| v.trim().parse::<f64>().is_ok_and(f64::is_finite));
    if numeric {
        seen.sort_by(|a, b| {
            a.trim()
                .parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b.trim().parse::<f64>().unwrap_or(0.0))
        });
    }
    (seen, numeric)
}

/// The mean of metric `m` over the points `members` and its 95% interval
/// over replications: each replication's values averaged over the points
/// (a replication where some point has no value is left out), then a
/// t-interval over replications. With common random numbers the points of
/// a replication share their draws, so replications are the independent
/// units.
pub fn marginal(runs: &Runs, members: &[usize], m: usize) -> Option<Cell> {
    let reps = runs.values.first().map_or(0, Vec::len);
    let per_rep: Vec<f64> = (0..reps)
        .map(|r| {
            let vals: Option<Vec<f64>> = members.iter().map(|&p| runs.values[p][r][m]).collect();
            match vals {
                Some(v) if !v.is_empty() => v.iter().sum::<f64>() / v.len() as f64,
                _ => f64::NAN,
            }
        })
        .collect();
    Estimate::of(&per_rep).map(|e| Cell {
        mean: e.mean,
        ci: e.ci95,
    })
}

/// The figures of a sweep, and notes.
pub fn figures(sw: &SweepFolder) -> (Vec<Figure>, Vec<String>) {
    let mut figs = Vec::new();
    let mut notes = sw.manifest.notes.clone();
    if sw.points.params.is_empty() {
        notes.push("The sweep has no parameters: nothing to plot against.".into());
        return (figs, notes);
    }
    // Metrics grouped by what they measure (one chart each).
    let mut bases: Vec<&str> = Vec::new();
    for label in &sw.points.metrics {
        let (b, _) = split_metric(label);
        if !bases.contains(&b) {
            bases.push(b);
        }
    }
    for base in bases {
        figs.push(effects(sw, base));
    }
    if sw.manifest.design == "grid" && sw.points.params.len() >= 2 {
        let d = sw.points.params.len();
        let metrics: Vec<usize> = if d == 2 {
            (0..sw.points.metrics.len()).collect()
        } else {
            vec![0]
        };
        for &m in &metrics {
            for i in 0..d {
                for j in i + 1..d {
                    if let Some(f) = heat_map(sw, m, i, j) {
                        figs.push(f);
                    }
                }
            }
        }
    }
    if let Some(s) = &sw.sensitivity {
        for label in &sw.points.metrics {
            figs.push(sensitivity(s, label));
        }
    }
    // Ids are unique: add a suffix to repeats.
    let mut seen = std::collections::HashSet::new();
    for f in &mut figs {
        let mut id = f.id.clone();
        let mut k = 2;
        while !seen.insert(id.clone()) {
            id = format!("{}_{k}", f.id);
            k += 1;
        }
        f.id = id;
    }
    (figs, notes)
}

/// One metric base (`securitization_cost`) against every parameter: a
/// panel per parameter, a series per group.
pub fn effects(sw: &SweepFolder, base: &str) -> Figure {
    let p = &sw.points;
    let metrics: Vec<usize> = (0..p.metrics.len())
        .filter(|&m| split_metric(&p.metrics[m]).0 == base)
        .collect();
    let sampled = sw.manifest.sampled();
    let reps = sw.manifest.replications;
    let mut panels = Vec::new();
    let mut averaged_any = false;
    for (k, name) in p.params.iter().enumerate() {
        let (levels, numeric) = levels(p, k);
        let x_of = |v: &str, i: usize| {
            if numeric {
                v.trim().parse::<f64>().unwrap_or(0.0)
            } else {
                i as f64
            }
        };
        let x_axis = if numeric {
            XAxis::Numeric
        } else {
            XAxis::Categories(levels.iter().map(|l| value_label(l)).collect())
        };
        let mut series = Vec::new();
        let mut averaged = false;
        for (si, &m) in metrics.iter().enumerate() {
            let mut points = Vec::new();
            if sampled {
                for (pt, vals) in p.values.iter().enumerate() {
                    let i = levels.iter().position(|l| *l == vals[k]).unwrap_or(0);
                    if let Some(c) = p.cells[pt][m] {
                        points.push(Point {
                            x: x_of(&vals[k], i),
                            y: c.mean,
                            ci: c.ci,
                        });
                    }
                }
                points.sort_by(|a, b| a.x.total_cmp(&b.x));
            } else {
                for (i, level) in levels.iter().enumerate() {
                    let members: Vec<usize> = (0..p.values.len())
                        .filter(|&pt| p.values[pt][k] == *level)
                        .collect();
                    let cell = if members.len() == 1 {
                        p.cells[members[0]][m]
                    } else {
                        averaged = true;
                        marginal(&sw.runs, &members, m)
                    };
                    if let Some(c) = cell {
                        points.push(Point {
                            x: x_of(level, i),
                            y: c.mean,
                            ci: c.ci,
                        });
                    }
                }
            }
            series.push(Series {
                label: group_label(split_metric(&p.metrics[m]).1),
                colour: if split_metric(&p.metrics[m]).1 == "all" {
                    6
                } else {
                    si
                },
                marks: if sampled {
                    Marks::Markers
                } else {
                    Marks::LineMarkers
                },
                points,
            });
        }
        averaged_any |= averaged;
        panels.push(Panel::Xy(XyPanel {
            title: name.clone(),
            x_label: name.clone(),
            x_axis,
            y_label: metric_unit(base),
            include_zero: base == "securitization_cost",
            y_bounds: if base.ends_with("_share") || base.starts_with("mean_trust") {
                Some((0.0, 1.0))
            } else {
                None
            },
            y_span: None,
            series,
        }));
    }
    let legend: Vec<LegendEntry> = metrics
        .iter()
        .enumerate()
        .map(|(si, &m)| {
            let g = split_metric(&p.metrics[m]).1;
            LegendEntry {
                label: group_label(g),
                key: Key::Marker(if g == "all" { 6 } else { si }),
            }
        })
        .chain(std::iter::once(LegendEntry {
            label: if reps >= 2 {
                format!("95% CI over {reps} replications")
            } else {
                "one replication: no interval".into()
            },
            key: Key::Whisker,
        }))
        .collect();
    let paired = " All points share each replication's random streams, so differences between values are paired and more precise than the intervals of the levels suggest (points.csv has paired differences).";
    let how = if sampled {
        format!(
            "Every design point of the {} design: its mean over replications and 95% t-interval (points.csv), against each parameter in turn (the other parameters vary too).",
            sw.manifest.design
        )
    } else if averaged_any {
        "Mean over replications with its 95% t-interval at each value of the parameter. Where other parameters vary too, the value is averaged over their levels replication by replication (runs.csv), and the interval is over those averages; where a value is one design point, the figures are points.csv's.".into()
    } else {
        "Mean over replications with its 95% t-interval at each design point (points.csv).".into()
    };
    let categorical = (0..p.params.len()).any(|k| !levels(p, k).1);
    let how = format!("{how}{paired}");
    let columns = p.params.len().min(if categorical { 2 } else { 3 });
    Figure {
        id: format!("effect_{}", slug(base)),
        title: format!("{} against each parameter", metric_title(base)),
        caption: how,
        panels,
        columns,
        row_height: if columns == 1 { 420 } else { 360 },
        legend,
    }
}

/// `securitization_cost` -> `Securitization cost`.
pub fn metric_title(base: &str) -> String {
    capitalise(
        &base
            .replace('_', " ")
            .replace("coinvention", "co-invention"),
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Metric `m` over parameters `i` (rows) and `j` (columns); cells averaged
/// over the other parameters' levels.
pub fn heat_map(sw: &SweepFolder, m: usize, i: usize, j: usize) -> Option<Figure> {
    let p = &sw.points;
    let (rows, _) = levels(p, i);
    let (cols, _) = levels(p, j);
    if rows.len() < 2 && cols.len() < 2 {
        return None;
    }
    let mut cells = vec![vec![None; cols.len()]; rows.len()];
    for (ri, r) in rows.iter().enumerate() {
        for (ci, c) in cols.iter().enumerate() {
            let means: Vec<f64> = (0..p.values.len())
                .filter(|&pt| p.values[pt][i] == *r && p.values[pt][j] == *c)
                .filter_map(|pt| p.cells[pt][m].map(|c| c.mean))
                .collect();
            if !means.is_empty() {
                cells[ri][ci] = Some(means.iter().sum::<f64>() / means.len() as f64);
            }
        }
    }
    let label = &p.metrics[m];
    let (base, group) = split_metric(label);
    let (min, max) = value_range(cells.iter().flatten().flatten().copied());
    let others = p.params.len() > 2;
    Some(Figure {
        id: format!(
            "heatmap_{}_{}_{}",
            slug(label),
            slug(&p.params[i]),
            slug(&p.params[j])
        ),
        title: format!(
            "{}, {}: {} × {}",
            metric_title(base),
            group_label(group),
            p.params[i],
            p.params[j]
        ),
        caption: format!(
            "Mean over replications of {label} at each pair of values{} (points.csv). Colour: viridis from the lowest (dark) to the highest (yellow) value.",
            if others {
                ", averaged over the other parameters' levels"
            } else {
                ""
            }
        ),
        panels: vec![Panel::Heat(HeatPanel {
            title: String::new(),
            x_label: p.params[j].clone(),
            y_label: p.params[i].clone(),
            x_categories: cols.iter().map(|c| value_label(c)).collect(),
            y_categories: rows.iter().map(|r| value_label(r)).collect(),
            cells,
        })],
        columns: 1,
        row_height: (120 + 56 * rows.len() as u32).clamp(300, 640),
        legend: vec![LegendEntry {
            label: metric_unit(base)
                .split(',')
                .next()
                .unwrap_or(base)
                .to_string(),
            key: Key::ColourBar { min, max },
        }],
    })
}

pub fn sensitivity(s: &Sensitivity, label: &str) -> Figure {
    let rows: Vec<&Index> = s.rows.iter().filter(|r| r.metric == label).collect();
    let (a_name, b_name) = if s.sobol {
        ("first-order index S1", "total index ST")
    } else {
        (
            "mu* (mean |elementary effect|)",
            "sigma (sd of elementary effects)",
        )
    };
    let has_ci = rows.iter().any(|r| r.a.ci.is_some() || r.b.ci.is_some());
    let mut legend = vec![
        LegendEntry {
            label: a_name.into(),
            key: Key::Swatch(0),
        },
        LegendEntry {
            label: b_name.into(),
            key: Key::Swatch(1),
        },
    ];
    if has_ci {
        legend.push(LegendEntry {
            label: "bootstrap 95% interval".into(),
            key: Key::Whisker,
        });
    }
    let (base, group) = split_metric(label);
    let value_label = if s.sobol {
        "share of the output's variance".to_string()
    } else {
        format!(
            "{} per unit of the parameter's range",
            metric_unit(base).split(',').next().unwrap_or(base)
        )
    };
    Figure {
        id: format!("sensitivity_{}", slug(label)),
        title: format!(
            "{} sensitivity of {} ({})",
            if s.sobol { "Sobol" } else { "Morris" },
            base.replace('_', " "),
            group_label(group)
        ),
        caption: if s.sobol {
            format!(
                "Sobol indices of {label} (sensitivity.csv): S1, the share of the variance of the point means due to the parameter alone; ST, including its interactions. Whiskers: bootstrap 95% intervals. Estimates from few samples can fall below 0 or above 1."
            )
        } else {
            format!(
                "Morris screening of {label} (sensitivity.csv): mu*, the mean absolute elementary effect (how much the parameter matters), and sigma, their standard deviation (non-linearity and interactions), per unit of the parameter's range.{}",
                if has_ci {
                    " Whiskers: bootstrap 95% intervals over trajectories."
                } else {
                    " This sensitivity.csv has no intervals."
                }
            )
        },
        panels: vec![Panel::Bars(BarPanel {
            title: String::new(),
            value_label,
            categories: rows.iter().map(|r| r.parameter.clone()).collect(),
            series: vec![
                BarSeries {
                    label: a_name.into(),
                    colour: 0,
                    bars: rows.iter().map(|r| Some(r.a)).collect(),
                },
                BarSeries {
                    label: b_name.into(),
                    colour: 1,
                    bars: rows.iter().map(|r| Some(r.b)).collect(),
                },
            ],
        })],
        columns: 1,
        row_height: (80 + 52 * rows.len() as u32).max(300),
        legend,
    }
}

#[cfg(test)]
mod tests {
    use super::super::chart::short_number;
    use super::super::testdata;
    use super::*;
    use crate::stats::t_quantile_975;

    /// A CSV file as a header and rows of strings.
    fn table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::Reader::from_path(path).unwrap();
        let header = r.headers().unwrap().iter().map(str::to_string).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
            .collect();
        (header, rows)
    }

    fn col(header: &[String], name: &str) -> usize {
        header.iter().position(|h| h == name).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    fn xy(f: &Figure, k: usize) -> &XyPanel {
        match &f.panels[k] {
            Panel::Xy(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn grid_effects_average_replication_by_replication_and_heat_maps_average_points() {
        let tmp = tempfile::tempdir().unwrap();
        let out = testdata::sweep_folder(tmp.path(), testdata::GRID);
        let sw = SweepFolder::read(&out).unwrap();
        let (figs, notes) = figures(&sw);
        assert!(notes.is_empty(), "{notes:?}");
        let ids: Vec<&str> = figs.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "effect_securitization_cost",
                "effect_mean_trust",
                "heatmap_securitization_cost_all_positive_list_scope",
                "heatmap_securitization_cost_all_positive_list_licence",
                "heatmap_securitization_cost_all_scope_licence",
            ]
        );
        let (rh, runs) = table(&out.join("runs.csv"));
        let (ph, points) = table(&out.join("points.csv"));
        // The scope panel, low-income series: per replication, the mean
        // over the 4 points of each scope level, then a t-interval.
        let f = &figs[0];
        assert_eq!(f.panels.len(), 3);
        let scope = xy(f, 1);
        assert_eq!(scope.x_axis, XAxis::Numeric);
        assert_eq!(scope.series.len(), 2);
        assert_eq!(scope.series[1].label, "low income");
        let (cs, cm) = (
            col(&rh, "scope"),
            col(&rh, "securitization_cost@income:low"),
        );
        let levels: Vec<f64> = vec![0.0, 0.4, 0.8];
        assert_eq!(scope.series[1].points.len(), 3);
        for (pt, level) in scope.series[1].points.iter().zip(&levels) {
            let per_rep: Vec<f64> = (0..3)
                .map(|r| {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter(|row| row[1] == r.to_string())
                        .filter(|row| (row[cs].parse::<f64>().unwrap() - level).abs() < 1e-9)
                        .map(|row| row[cm].parse::<f64>().unwrap())
                        .collect();
                    assert_eq!(v.len(), 4);
                    v.iter().sum::<f64>() / 4.0
                })
                .collect();
            let mean = per_rep.iter().sum::<f64>() / 3.0;
            let sd = (per_rep.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 2.0).sqrt();
            let half = t_quantile_975(2) * sd / 3f64.sqrt();
            assert!((pt.x - level).abs() < 1e-12);
            assert!(close(pt.y, mean), "{} vs {mean}", pt.y);
            let (lo, hi) = pt.ci.unwrap();
            assert!(close(lo, mean - half) && close(hi, mean + half));
        }
        // The list parameter is categorical, its values shown without quotes.
        let list = xy(f, 0);
        assert_eq!(
            list.x_axis,
            XAxis::Categories(vec!["[] (none)".into(), "[health]".into()])
        );
        // Heat map scope x licence of the first metric: each cell the mean
        // of the two points (positive list on and off) of points.csv.
        let Panel::Heat(h) = &figs[4].panels[0] else {
            panic!()
        };
        assert_eq!(h.y_categories, ["0.0", "0.4", "0.8"]);
        assert_eq!(h.x_categories, ["0.1", "0.6"]);
        let (ps, pl, pm) = (
            col(&ph, "scope"),
            col(&ph, "licence"),
            col(&ph, "securitization_cost@all:mean"),
        );
        for (ri, r) in h.y_categories.iter().enumerate() {
            for (ci, c) in h.x_categories.iter().enumerate() {
                let v: Vec<f64> = points
                    .iter()
                    .filter(|row| row[ps] == *r && row[pl] == *c)
                    .map(|row| row[pm].parse::<f64>().unwrap())
                    .collect();
                assert_eq!(v.len(), 2);
                assert!(close(h.cells[ri][ci].unwrap(), (v[0] + v[1]) / 2.0));
            }
        }
        // Every cell's value is printed in the SVG.
        let svg = figs[4].svg().unwrap();
        for v in h.cells.iter().flatten().flatten() {
            assert!(
                svg.contains(&format!("\n{}\n</text>", short_number(*v))),
                "{v}"
            );
        }
        // A marker per plotted value (the legend's markers too).
        let svg = f.svg().unwrap();
        let marks: usize = f
            .panels
            .iter()
            .map(|p| match p {
                Panel::Xy(p) => p.series.iter().map(|s| s.points.len()).sum::<usize>(),
                _ => 0,
            })
            .sum();
        assert_eq!(svg.matches("<circle").count(), marks + 2);
    }

    #[test]
    fn one_parameter_sweeps_plot_points_csv_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let text = r#"scenario = "base.toml"
replications = 3
metrics = ["securitization_cost@all", "coinvention_share@all"]
[[param]]
path = "policy.export_control[r].licence_rate"
values = [0.1, 0.5, 0.9]
"#;
        let out = testdata::sweep_folder(tmp.path(), text);
        let sw = SweepFolder::read(&out).unwrap();
        let (figs, _) = figures(&sw);
        assert_eq!(figs.len(), 2, "no heat map with one parameter");
        let (ph, points) = table(&out.join("points.csv"));
        for (f, metric) in figs
            .iter()
            .zip(["securitization_cost@all", "coinvention_share@all"])
        {
            let s = &xy(f, 0).series[0];
            assert_eq!(s.points.len(), 3);
            for (pt, row) in s.points.iter().zip(&points) {
                let get = |suffix: &str| {
                    row[col(&ph, &format!("{metric}:{suffix}"))]
                        .parse::<f64>()
                        .unwrap()
                };
                assert_eq!(pt.x, row[1].parse::<f64>().unwrap());
                assert_eq!(pt.y, get("mean"));
                assert_eq!(pt.ci, Some((get("ci95_low"), get("ci95_high"))));
            }
        }
    }

    #[test]
    fn sensitivity_bars_are_sensitivity_csv_and_sampled_designs_plot_every_point() {
        for (design, extra, points) in [
            ("sobol", "samples = 4\nbootstrap = 30", 4 * (2 + 2)),
            (
                "morris",
                "samples = 4\nlevels = 4\nbootstrap = 30",
                4 * (2 + 1),
            ),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let text = format!(
                r#"scenario = "base.toml"
replications = 2
design = "{design}"
{extra}
metrics = ["securitization_cost@all", "mean_trust@all"]
[[param]]
name = "licence"
path = "policy.export_control[r].licence_rate"
min = 0.0
max = 1.0
[[param]]
name = "erosion"
path = "trust.erosion"
min = 0.0
max = 1.0
"#
            );
            let out = testdata::sweep_folder(tmp.path(), &text);
            let sw = SweepFolder::read(&out).unwrap();
            let (figs, _) = figures(&sw);
            let ids: Vec<&str> = figs.iter().map(|f| f.id.as_str()).collect();
            assert_eq!(
                ids,
                [
                    "effect_securitization_cost",
                    "effect_mean_trust",
                    "sensitivity_securitization_cost_all",
                    "sensitivity_mean_trust_all"
                ]
            );
            // Every design point against each parameter.
            for k in 0..2 {
                let p = xy(&figs[0], k);
                assert_eq!(p.series[0].marks, Marks::Markers);
                assert_eq!(p.series[0].points.len(), points, "{design}");
            }
            let (sh, rows) = table(&out.join("sensitivity.csv"));
            let names = index_columns(design == "sobol");
            for (fig, metric) in figs[2..]
                .iter()
                .zip(["securitization_cost@all", "mean_trust@all"])
            {
                let Panel::Bars(b) = &fig.panels[0] else {
                    panic!()
                };
                assert_eq!(b.categories, ["licence", "erosion"]);
                let mine: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == metric).collect();
                for (i, row) in mine.iter().enumerate() {
                    let v = |n: &str| row[col(&sh, n)].parse::<f64>().unwrap();
                    for (s, base) in [(0, 0), (1, 3)] {
                        let bar = b.series[s].bars[i].unwrap();
                        assert_eq!(bar.value, v(names[base]));
                        let (lo, hi) = (v(names[base + 1]), v(names[base + 2]));
                        assert_eq!(
                            bar.ci,
                            Some((lo, hi)).filter(|_| lo.is_finite() && hi.is_finite())
                        );
                    }
                }
                let svg = fig.svg().unwrap();
                assert_eq!(svg.matches("opacity=\"0.85\"").count(), 2 * 2 + 2);
            }
        }
    }

    #[test]
    fn units_slugs_and_levels() {
        assert_eq!(
            metric_unit("securitization_cost"),
            "securitization cost (log points), final year"
        );
        assert_eq!(
            metric_unit("retaliations_opened_total"),
            "counter-regimes opened (count), sum over the run"
        );
        assert_eq!(
            metric_unit("adoption_share_gdp_weighted"),
            "adoption share (0 to 1) (GDP-weighted), final year"
        );
        assert_eq!(
            slug("securitization_cost@income:low"),
            "securitization_cost_income_low"
        );
        assert_eq!(value_label("[\"a\", \"b\"]"), "[a, b]");
        assert_eq!(value_label("0.9787707328796387"), "0.979");
        assert_eq!(value_label("0.30000000000000004"), "0.300");
        assert_eq!(value_label("0.75"), "0.75");
        assert_eq!(split_metric("x@bloc:A"), ("x", "bloc:A"));
        let points = Points {
            params: vec!["p".into()],
            metrics: vec![],
            values: vec![
                vec!["0.5".into()],
                vec!["0.25".into()],
                vec!["0.5".into()],
                vec!["1e-1".into()],
            ],
            cells: vec![vec![]; 4],
        };
        assert_eq!(
            levels(&points, 0),
            (vec!["1e-1".to_string(), "0.25".into(), "0.5".into()], true)
        );
    }
}
