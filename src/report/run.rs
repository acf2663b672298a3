//! A run folder (`techdiff run`): its files read into plain tables, and the
//! run's figures built from them.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::chart::{
    Bar, BarPanel, BarSeries, Dash, Figure, Key, LegendEntry, MapPanel, MapPoint, Marks, Panel,
    Point, Series, XAxis, XyPanel, value_range,
};
use super::read::{Csv, Json, json};
use crate::error::InputError;
use crate::stats::Estimate;

const WHAT: &str = "run folder";

/// The facts of `manifest.json` the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct RunManifest {
    pub name: String,
    pub description: String,
    pub origin: String,
    pub overrides: Vec<String>,
    pub seed: u64,
    pub replications: u32,
    pub steps: u32,
    pub start_year: i64,
    pub countries: u64,
    pub sectors: Vec<String>,
    pub version: String,
    pub git_revision: Option<String>,
    pub started_at: Option<String>,
    pub wall_time_seconds: Option<f64>,
    pub threads: Option<u64>,
    pub command_line: Vec<String>,
    /// The resolved scenario table, pretty JSON (empty if absent).
    pub scenario_json: String,
}

/// A summary.json estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Est {
    pub mean: f64,
    pub n: u64,
    pub ci: Option<(f64, f64)>,
}

impl Est {
    fn bar(self) -> Bar {
        Bar {
            value: self.mean,
            ci: self.ci,
        }
    }
}

/// The securitization costs of `summary.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    /// Per group in the file's order: (group, unweighted, GDP-weighted).
    pub groups: Vec<(String, Option<Est>, Option<Est>)>,
    /// Per country code.
    pub countries: HashMap<String, Est>,
}

/// Per (group, metric): values by variant, step and replication (NaN where
/// the file has no row: the value is undefined).
#[derive(Debug, Clone)]
pub struct TimeSeries {
    pub years: Vec<i64>,
    pub replications: usize,
    /// Groups in order of first appearance.
    pub groups: Vec<String>,
    cells: HashMap<(String, String), [Vec<Vec<f64>>; 2]>,
}

pub const POLICY: usize = 0;
pub const COUNTERFACTUAL: usize = 1;

/// One row of countries.csv (policy, replication 0).
#[derive(Debug, Clone, PartialEq)]
pub struct CountryInfo {
    pub code: String,
    pub name: String,
    pub bloc: String,
    pub income: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct RunFolder {
    pub manifest: RunManifest,
    pub costs: Costs,
    pub series: TimeSeries,
    pub countries: Vec<CountryInfo>,
}

fn est(file: &str, key: &str, v: &Value) -> Result<Option<Est>, InputError> {
    if v.is_null() {
        return Ok(None);
    }
    let j = Json::new(file, v);
    let mean = j.opt_f64("mean").ok_or_else(|| {
        InputError::new(file, "expected an estimate with a numeric `mean`").with_key(key)
    })?;
    let ci = match (j.opt_f64("ci95_low"), j.opt_f64("ci95_high")) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        _ => None,
    };
    Ok(Some(Est {
        mean,
        n: v.get("n").and_then(Value::as_u64).unwrap_or(0),
        ci,
    }))
}

impl RunManifest {
    pub fn read(dir: &Path) -> Result<RunManifest, InputError> {
        let path = dir.join("manifest.json");
        let v = json(&path, WHAT)?;
        let file = path.display().to_string();
        let j = Json::new(&file, &v);
        let replications = j.u64("replications")?;
        let steps = j.u64("steps")?;
        if replications == 0 || replications > u64::from(u32::MAX) {
            return Err(InputError::new(&file, "`replications` must be at least 1")
                .with_key("replications"));
        }
        if steps > 1_000_000 {
            return Err(InputError::new(&file, "`steps` is implausibly large").with_key("steps"));
        }
        Ok(RunManifest {
            name: j.str("scenario_name")?.to_string(),
            description: j.opt_str("description")?.unwrap_or_default().to_string(),
            origin: j
                .opt_str("scenario_origin")?
                .unwrap_or_default()
                .to_string(),
            overrides: if v.get("overrides").is_some() {
                j.strings("overrides")?
            } else {
                Vec::new()
            },
            seed: j.u64("seed")?,
            replications: replications as u32,
            steps: steps as u32,
            start_year: j.i64("start_year")?,
            countries: j.u64("countries")?,
            sectors: if v.get("sectors").is_some() {
                j.strings("sectors")?
            } else {
                Vec::new()
            },
            version: j
                .opt_str("techdiff_version")?
                .unwrap_or("unknown")
                .to_string(),
            git_revision: j.opt_str("git_revision")?.map(str::to_string),
            started_at: j.opt_str("started_at")?.map(str::to_string),
            wall_time_seconds: j.opt_f64("wall_time_seconds"),
            threads: v.get("threads").and_then(Value::as_u64),
            command_line: if v.get("command_line").is_some() {
                j.strings("command_line")?
            } else {
                Vec::new()
            },
            scenario_json: v
                .get("scenario")
                .filter(|s| !s.is_null())
                .and_then(|s| serde_json::to_string_pretty(s).ok())
                .unwrap_or_default(),
        })
    }
}

impl Costs {
    pub fn read(dir: &Path) -> Result<Costs, InputError> {
        let path = dir.join("summary.json");
        let v = json(&path, WHAT)?;
        let file = path.display().to_string();
        let j = Json::new(&file, &v);
        let plain = j.object("securitization_cost")?;
        let weighted = j.object("securitization_cost_gdp_weighted")?;
        let mut groups = Vec::new();
        for (g, e) in plain {
            let w = weighted.get(g).unwrap_or(&Value::Null);
            groups.push((
                g.clone(),
                est(&file, &format!("securitization_cost.{g}"), e)?,
                est(&file, &format!("securitization_cost_gdp_weighted.{g}"), w)?,
            ));
        }
        let mut countries = HashMap::new();
        for (code, c) in j.object("countries")? {
            let key = format!("countries.{code}.securitization_cost");
            if let Some(e) = est(
                &file,
                &key,
                c.get("securitization_cost").unwrap_or(&Value::Null),
            )? {
                countries.insert(code.clone(), e);
            }
        }
        Ok(Costs { groups, countries })
    }
}

impl TimeSeries {
    pub fn read(dir: &Path, m: &RunManifest) -> Result<TimeSeries, InputError> {
        let csv = Csv::read(
            &dir.join("timeseries.csv"),
            WHAT,
            &[
                "variant",
                "replication",
                "step",
                "year",
                "group",
                "metric",
                "value",
            ],
        )?;
        let [cv, cr, cs, cy, cg, cm, cval] = [
            "variant",
            "replication",
            "step",
            "year",
            "group",
            "metric",
            "value",
        ]
        .map(|c| csv.column(c).unwrap_or(0));
        let reps = m.replications as usize;
        let steps = m.steps as usize + 1;
        let mut years: Vec<Option<i64>> = vec![None; steps];
        let mut groups = Vec::new();
        let mut cells: HashMap<(String, String), [Vec<Vec<f64>>; 2]> = HashMap::new();
        // Every step of every replication of both variants has rows (a
        // series may leave out steps where it is undefined, never all):
        // a step without any means the file was cut or edited.
        let mut seen = vec![false; 2 * reps * steps];
        let mut last_key: Option<(String, String)> = None;
        for row in &csv.rows {
            let variant = match csv.str(row, cv) {
                "policy" => POLICY,
                "counterfactual" => COUNTERFACTUAL,
                other => {
                    return Err(csv.error(
                        row.0,
                        format!(
                            "column `variant`: `{}` is not `policy` or `counterfactual`",
                            super::html::clip(other, 40)
                        ),
                    ));
                }
            };
            let rep = csv.u64(row, cr)? as usize;
            if rep >= reps {
                return Err(csv.error(
                    row.0,
                    format!("replication {rep}, but manifest.json says there are {reps}"),
                ));
            }
            let step = csv.u64(row, cs)? as usize;
            if step >= steps {
                return Err(csv.error(
                    row.0,
                    format!(
                        "step {step}, but manifest.json says the run has {} steps",
                        steps - 1
                    ),
                ));
            }
            let year = csv.f64(row, cy)?;
            if year.fract() != 0.0 {
                return Err(csv.error(
                    row.0,
                    format!("column `year`: `{year}` is not a whole number"),
                ));
            }
            years[step] = Some(year as i64);
            let value = csv.f64(row, cval)?;
            let (g, metric) = (csv.str(row, cg), csv.str(row, cm));
            let fresh = last_key
                .as_ref()
                .is_none_or(|(lg, lm)| lg != g || lm != metric);
            if fresh {
                let key = (g.to_string(), metric.to_string());
                if !groups.iter().any(|x| x == g) {
                    groups.push(g.to_string());
                }
                cells.entry(key.clone()).or_insert_with(|| {
                    [
                        vec![vec![f64::NAN; reps]; steps],
                        vec![vec![f64::NAN; reps]; steps],
                    ]
                });
                last_key = Some(key);
            }
            let key = last_key.as_ref().expect("set above");
            cells.get_mut(key).expect("inserted above")[variant][step][rep] = value;
            seen[(variant * reps + rep) * steps + step] = true;
        }
        if let Some(at) = seen.iter().position(|&s| !s).filter(|_| !cells.is_empty()) {
            let (variant, rest) = (at / (reps * steps), at % (reps * steps));
            return Err(InputError::new(
                &csv.file,
                format!(
                    "no rows for the {} variant, replication {}, step {} (manifest.json: {reps} replications, {} steps): the file is incomplete",
                    ["policy", "counterfactual"][variant],
                    rest / steps,
                    rest % steps,
                    steps - 1
                ),
            ));
        }
        if cells.is_empty() {
            return Err(InputError::new(
                &csv.file,
                "no rows: the run wrote no time series",
            ));
        }
        let years = years
            .iter()
            .enumerate()
            .map(|(s, y)| y.unwrap_or(m.start_year + s as i64))
            .collect();
        Ok(TimeSeries {
            years,
            replications: reps,
            groups,
            cells,
        })
    }

    /// Values `[step][replication]` of a series, if the file has it.
    pub fn values(&self, group: &str, metric: &str, variant: usize) -> Option<&Vec<Vec<f64>>> {
        self.cells
            .get(&(group.to_string(), metric.to_string()))
            .map(|c| &c[variant])
    }

    /// Mean and 95% t-interval over replications at every step where the
    /// value is defined in some replication.
    pub fn band(&self, group: &str, metric: &str, variant: usize) -> Vec<Point> {
        let Some(v) = self.values(group, metric, variant) else {
            return Vec::new();
        };
        self.points(v.iter().map(|reps| reps.to_vec()))
    }

    fn points(&self, per_step: impl Iterator<Item = Vec<f64>>) -> Vec<Point> {
        per_step
            .zip(&self.years)
            .filter_map(|(values, &year)| {
                Estimate::of(&values).map(|e| Point {
                    x: year as f64,
                    y: e.mean,
                    ci: e.ci95,
                })
            })
            .collect()
    }

    /// The securitization cost of a group at every step, in log points:
    /// 100 x (counterfactual - policy) group-mean log productivity, paired
    /// by replication (MODEL.md s.7; at the last step it equals summary.json).
    pub fn cost_over_time(&self, group: &str) -> Vec<Point> {
        let (Some(p), Some(c)) = (
            self.values(group, "log_productivity", POLICY),
            self.values(group, "log_productivity", COUNTERFACTUAL),
        ) else {
            return Vec::new();
        };
        self.points(
            p.iter()
                .zip(c)
                .map(|(p, c)| p.iter().zip(c).map(|(p, c)| 100.0 * (c - p)).collect()),
        )
    }

    /// The running total of a per-step count, per replication.
    pub fn cumulative(&self, group: &str, metric: &str, variant: usize) -> Vec<Point> {
        let Some(v) = self.values(group, metric, variant) else {
            return Vec::new();
        };
        let mut total = vec![0.0; self.replications];
        let per_step: Vec<Vec<f64>> = v
            .iter()
            .map(|reps| {
                for (t, x) in total.iter_mut().zip(reps) {
                    if !x.is_nan() {
                        *t += x;
                    }
                }
                total.clone()
            })
            .collect();
        self.points(per_step.into_iter())
    }

    pub fn groups_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn read_countries(dir: &Path) -> Result<Vec<CountryInfo>, InputError> {
    let csv = Csv::read(
        &dir.join("countries.csv"),
        WHAT,
        &["variant", "replication", "code", "name", "bloc", "income"],
    )?;
    let [cv, cr, cc, cn, cb, ci] = ["variant", "replication", "code", "name", "bloc", "income"]
        .map(|c| csv.column(c).unwrap_or(0));
    // Files written before the coordinates were added have no lat, lon.
    let (clat, clon) = (csv.column("lat"), csv.column("lon"));
    let mut out = Vec::new();
    for row in &csv.rows {
        if csv.str(row, cv) != "policy" || csv.u64(row, cr)? != 0 {
            continue;
        }
        let coord = |c: Option<usize>, range: f64| -> Result<Option<f64>, InputError> {
            let Some(c) = c else { return Ok(None) };
            let v = csv.opt_f64(row, c)?;
            if let Some(x) = v
                && !(-range..=range).contains(&x)
            {
                return Err(csv.error(
                    row.0,
                    format!(
                        "column `{}`: {x} is outside [-{range}, {range}]",
                        csv.header[c]
                    ),
                ));
            }
            Ok(v)
        };
        out.push(CountryInfo {
            code: csv.str(row, cc).to_string(),
            name: csv.str(row, cn).to_string(),
            bloc: csv.str(row, cb).to_string(),
            income: csv.str(row, ci).to_string(),
            lat: coord(clat, 90.0)?,
            lon: coord(clon, 180.0)?,
        });
    }
    Ok(out)
}

impl RunFolder {
    pub fn read(dir: &Path) -> Result<RunFolder, InputError> {
        let manifest = RunManifest::read(dir)?;
        let costs = Costs::read(dir)?;
        let series = TimeSeries::read(dir, &manifest)?;
        let countries = read_countries(dir)?;
        Ok(RunFolder {
            manifest,
            costs,
            series,
            countries,
        })
    }

    pub fn final_year(&self) -> i64 {
        self.series
            .years
            .last()
            .copied()
            .unwrap_or(self.manifest.start_year + i64::from(self.manifest.steps))
    }
}

/// `bloc:A` -> `bloc A`, `income:upper_middle` -> `upper-middle income`,
/// `all` -> `all countries`, `sector:x` -> `x`.
pub fn group_label(g: &str) -> String {
    if g == "all" {
        return "all countries".into();
    }
    if let Some(b) = g.strip_prefix("bloc:") {
        return format!("bloc {b}");
    }
    if let Some(i) = g.strip_prefix("income:") {
        return format!("{} income", i.replace('_', "-"));
    }
    if let Some(s) = g.strip_prefix("sector:") {
        return s.to_string();
    }
    g.to_string()
}

/// Colour index of a group in a chart of several groups: `all` is black.
fn group_colour(g: &str, i: usize) -> usize {
    if g == "all" { 6 } else { i }
}

/// The figures of a run, and notes on what could not be drawn.
pub fn figures(run: &RunFolder) -> (Vec<Figure>, Vec<String>) {
    let mut figs = Vec::new();
    let mut notes = Vec::new();
    let reps = run.manifest.replications;
    let ci_text = if reps >= 2 {
        format!("95% CI over {reps} replications")
    } else {
        "one replication: no interval".to_string()
    };
    figs.push(cost_by_group(run, &ci_text));
    let ts = &run.series;
    let levels_label = level_label(run);
    for (id, prefix, what) in [
        ("productivity_by_bloc", "bloc:", "bloc"),
        ("productivity_by_income", "income:", "income group"),
    ] {
        let mut groups = vec!["all".to_string()];
        groups.extend(ts.groups_with_prefix(prefix));
        figs.push(productivity(
            run,
            id,
            what,
            &groups,
            &levels_label,
            &ci_text,
        ));
    }
    let sectors = ts.groups_with_prefix("sector:");
    if sectors.is_empty() {
        notes.push(
            "No sector series in timeseries.csv: the adoption-by-sector chart is omitted.".into(),
        );
    } else {
        figs.push(adoption_by_sector(run, &sectors, &ci_text));
    }
    let mut blocs = vec!["all".to_string()];
    blocs.extend(ts.groups_with_prefix("bloc:"));
    figs.push(coinvention(run, &blocs, &ci_text));
    figs.push(trust_and_retaliation(run, &blocs, &ci_text));
    figs.push(controls(run, &blocs, &ci_text));
    match world_map(run) {
        Ok(f) => figs.push(f),
        Err(note) => notes.push(note),
    }
    (figs, notes)
}

/// The y label of log productivity: say that it starts at 0 when it does.
fn level_label(run: &RunFolder) -> String {
    let starts_at_zero = run.series.groups.iter().all(|g| {
        run.series
            .values(g, "log_productivity", POLICY)
            .and_then(|v| v.first())
            .is_none_or(|first| first.iter().all(|x| x.is_nan() || *x == 0.0))
    });
    if starts_at_zero {
        format!(
            "mean log productivity (ln, {} = 0)",
            run.manifest.start_year
        )
    } else {
        "mean log productivity (ln)".to_string()
    }
}

fn variant_legend(ci_text: &str) -> Vec<LegendEntry> {
    vec![
        LegendEntry {
            label: "policy".into(),
            key: Key::Style(Dash::Solid),
        },
        LegendEntry {
            label: "counterfactual (no controls)".into(),
            key: Key::Style(Dash::Dashed),
        },
        LegendEntry {
            label: ci_text.into(),
            key: Key::Band,
        },
    ]
}

fn group_legend(groups: &[String]) -> Vec<LegendEntry> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| LegendEntry {
            label: group_label(g),
            key: Key::Line(group_colour(g, i), Dash::Solid),
        })
        .collect()
}

fn line(label: String, colour: usize, dash: Dash, points: Vec<Point>) -> Series {
    Series {
        label,
        colour,
        marks: Marks::Line(dash),
        points,
    }
}

/// One solid line per group, in the group's colour, through `points(group)`.
fn group_lines(groups: &[String], points: impl Fn(&str) -> Vec<Point>) -> Vec<Series> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| line(group_label(g), group_colour(g, i), Dash::Solid, points(g)))
        .collect()
}

/// The legend of figures with a line per group in both variants.
fn group_and_variant_legend(groups: &[String], ci_text: &str) -> Vec<LegendEntry> {
    let mut legend = group_legend(groups);
    legend.extend(variant_legend(ci_text));
    legend
}

/// A panel over the years, with no 0 line and no bounds on its y axis
/// (change those with `..years_panel(..)`).
fn years_panel(
    title: impl Into<String>,
    y_label: impl Into<String>,
    series: Vec<Series>,
) -> XyPanel {
    XyPanel {
        title: title.into(),
        x_label: "year".into(),
        x_axis: XAxis::Years,
        y_label: y_label.into(),
        include_zero: false,
        y_bounds: None,
        y_span: None,
        series,
    }
}

/// A panel over the years of a share: its y axis is cut at 0 and 1.
fn share_panel(
    title: impl Into<String>,
    y_label: impl Into<String>,
    series: Vec<Series>,
) -> XyPanel {
    XyPanel {
        y_bounds: Some((0.0, 1.0)),
        ..years_panel(title, y_label, series)
    }
}

pub fn cost_by_group(run: &RunFolder, ci_text: &str) -> Figure {
    let groups = &run.costs.groups;
    let categories = groups.iter().map(|(g, ..)| group_label(g)).collect();
    let bars = |weighted: bool| -> Vec<Option<Bar>> {
        groups
            .iter()
            .map(|(_, u, w)| if weighted { *w } else { *u }.map(Est::bar))
            .collect()
    };
    Figure {
        id: "securitization_cost".into(),
        title: format!("Securitization cost by group, {}", run.final_year()),
        caption: format!(
            "Final log productivity lost to securitization: 100 × (counterfactual − policy), in log points (about percent), the mean over the group's countries and the GDP-weighted mean, with the {ci_text} (paired differences). From summary.json."
        ),
        panels: vec![Panel::Bars(BarPanel {
            title: String::new(),
            value_label: format!(
                "securitization cost in {} (log points ≈ % of productivity)",
                run.final_year()
            ),
            categories,
            series: vec![
                BarSeries {
                    label: "mean over countries".into(),
                    colour: 0,
                    bars: bars(false),
                },
                BarSeries {
                    label: "GDP-weighted mean".into(),
                    colour: 1,
                    bars: bars(true),
                },
            ],
        })],
        columns: 1,
        row_height: (70 + 46 * groups.len() as u32).max(300),
        legend: vec![
            LegendEntry {
                label: "mean over countries".into(),
                key: Key::Swatch(0),
            },
            LegendEntry {
                label: "GDP-weighted mean".into(),
                key: Key::Swatch(1),
            },
            LegendEntry {
                label: ci_text.into(),
                key: Key::Whisker,
            },
        ],
    }
}

pub fn productivity(
    run: &RunFolder,
    id: &str,
    what: &str,
    groups: &[String],
    levels_label: &str,
    ci_text: &str,
) -> Figure {
    let ts = &run.series;
    let levels = both_variants(ts, groups, "log_productivity");
    let gaps = group_lines(groups, |g| ts.cost_over_time(g));
    Figure {
        id: id.into(),
        title: format!("Log productivity by {what}: policy against counterfactual"),
        caption: format!(
            "Left: mean log productivity of the {what}'s countries over time under the policy (solid) and in the paired counterfactual without securitization (dashed). Right: the gap between them, 100 × (counterfactual − policy) in log points, per replication then averaged; its last value is the securitization cost. Shaded: {ci_text}."
        ),
        panels: vec![
            Panel::Xy(years_panel("levels", levels_label, levels)),
            Panel::Xy(XyPanel {
                include_zero: true,
                ..years_panel(
                    "gap: securitization cost so far",
                    "cost (log points, 100 × Δ ln productivity)",
                    gaps,
                )
            }),
        ],
        columns: 2,
        row_height: 440,
        legend: group_and_variant_legend(groups, ci_text),
    }
}

pub fn adoption_by_sector(run: &RunFolder, sectors: &[String], ci_text: &str) -> Figure {
    let ts = &run.series;
    // One scale for every sector, so the panels compare at a glance.
    let top = sectors
        .iter()
        .flat_map(|s| {
            [
                ts.band(s, "adoption_share", POLICY),
                ts.band(s, "adoption_share", COUNTERFACTUAL),
            ]
        })
        .flatten()
        .map(|p| p.ci.map_or(p.y, |c| c.1))
        .fold(0.0f64, f64::max)
        .min(1.0);
    let sector_span = Some((0.0, top));
    let panels = sectors
        .iter()
        .map(|s| {
            Panel::Xy(XyPanel {
                y_span: sector_span,
                ..share_panel(
                    group_label(s),
                    "adoption share",
                    vec![
                        line(
                            "policy".into(),
                            3,
                            Dash::Solid,
                            ts.band(s, "adoption_share", POLICY),
                        ),
                        line(
                            "counterfactual".into(),
                            0,
                            Dash::Dashed,
                            ts.band(s, "adoption_share", COUNTERFACTUAL),
                        ),
                    ],
                )
            })
        })
        .collect::<Vec<_>>();
    let columns = if sectors.len() <= 2 { sectors.len() } else { 3 };
    Figure {
        id: "adoption_by_sector".into(),
        title: "Adoption curves by sector".into(),
        caption: format!(
            "Share of (country, innovation) pairs of the sector that are held, 0 to 1, over time: policy against the paired counterfactual, all sectors on one scale. Shaded: {ci_text} (cut at 0 and 1 where it reaches beyond)."
        ),
        panels,
        columns,
        row_height: 260,
        legend: vec![
            LegendEntry {
                label: "policy".into(),
                key: Key::Line(3, Dash::Solid),
            },
            LegendEntry {
                label: "counterfactual (no controls)".into(),
                key: Key::Line(0, Dash::Dashed),
            },
            LegendEntry {
                label: ci_text.into(),
                key: Key::Band,
            },
        ],
    }
}

/// Policy (solid) and counterfactual (dashed) lines of one metric per group.
fn both_variants(ts: &TimeSeries, groups: &[String], metric: &str) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let c = group_colour(g, i);
        out.push(line(
            format!("{} policy", group_label(g)),
            c,
            Dash::Solid,
            ts.band(g, metric, POLICY),
        ));
        out.push(line(
            format!("{} counterfactual", group_label(g)),
            c,
            Dash::Dashed,
            ts.band(g, metric, COUNTERFACTUAL),
        ));
    }
    out
}

pub fn coinvention(run: &RunFolder, groups: &[String], ci_text: &str) -> Figure {
    Figure {
        id: "coinvention_share".into(),
        title: "Co-invention share".into(),
        caption: format!(
            "Share of the innovations the group's countries originated or co-invented since {} that have a foreign co-inventor (pooled over the group, cumulative), 0 to 1. Shaded: {ci_text} (cut at 0 and 1 where it reaches beyond).",
            run.manifest.start_year + 1
        ),
        panels: vec![Panel::Xy(share_panel(
            String::new(),
            "co-invention share (cumulative)",
            both_variants(&run.series, groups, "coinvention_share"),
        ))],
        columns: 1,
        row_height: 440,
        legend: group_and_variant_legend(groups, ci_text),
    }
}

pub fn trust_and_retaliation(run: &RunFolder, groups: &[String], ci_text: &str) -> Figure {
    let ts = &run.series;
    let retaliations = group_lines(groups, |g| ts.cumulative(g, "retaliations_opened", POLICY));
    let none = groups.iter().all(|g| {
        ts.values(g, "retaliations_opened", POLICY)
            .is_none_or(|v| v.iter().flatten().all(|x| x.is_nan() || *x == 0.0))
    });
    Figure {
        id: "trust_and_retaliation".into(),
        title: "Trust and retaliation".into(),
        caption: format!(
            "Left: mean trust of the group's countries in every other country, 0 to 1 (the counterfactual holds trust at its initial level). Right: counter-regimes opened by the group's countries since the start, under the policy (the counterfactual has no retaliation). Shaded: {ci_text} (trust intervals cut at 0 and 1)."
        ),
        panels: vec![
            Panel::Xy(share_panel(
                "mean trust",
                "mean trust (0 to 1)",
                both_variants(ts, groups, "mean_trust"),
            )),
            Panel::Xy(XyPanel {
                include_zero: true,
                ..years_panel(
                    if none {
                        "retaliations (policy): none opened"
                    } else {
                        "retaliations (policy)"
                    },
                    "counter-regimes opened, cumulative (count)",
                    retaliations,
                )
            }),
        ],
        columns: 2,
        row_height: 440,
        legend: group_and_variant_legend(groups, ci_text),
    }
}

pub fn controls(run: &RunFolder, groups: &[String], ci_text: &str) -> Figure {
    let ts = &run.series;
    let affected = group_lines(groups, |g| ts.band(g, "affected_economies", POLICY));
    let mut legend = group_legend(groups);
    legend.push(LegendEntry {
        label: ci_text.into(),
        key: Key::Band,
    });
    Figure {
        id: "controls".into(),
        title: "Reach of the controls (policy)".into(),
        caption: format!(
            "Left: the group's countries that are targets of a regime in force (controllers excluded). Right: share of existing innovations under control, over all sectors (all countries). Policy variant; the counterfactual has no controls. Shaded: {ci_text}."
        ),
        panels: vec![
            Panel::Xy(XyPanel {
                include_zero: true,
                y_bounds: Some((0.0, f64::INFINITY)),
                ..years_panel("affected economies", "targeted countries (count)", affected)
            }),
            Panel::Xy(XyPanel {
                include_zero: true,
                ..share_panel(
                    "controlled share of innovations",
                    "controlled share (0 to 1)",
                    vec![line(
                        group_label("all"),
                        6,
                        Dash::Solid,
                        ts.band("all", "controlled_share", POLICY),
                    )],
                )
            }),
        ],
        columns: 2,
        row_height: 440,
        legend,
    }
}

/// The map, or why there is none.
pub fn world_map(run: &RunFolder) -> Result<Figure, String> {
    let mut points = Vec::new();
    let mut unplaced = 0;
    for c in &run.countries {
        let Some(cost) = run.costs.countries.get(&c.code) else {
            continue;
        };
        match (c.lat, c.lon) {
            (Some(lat), Some(lon)) => points.push(MapPoint {
                code: c.code.clone(),
                lat,
                lon,
                value: cost.mean,
            }),
            _ => unplaced += 1,
        }
    }
    if points.is_empty() {
        return Err(
            "The scenario gives no country coordinates (lat, lon in countries.csv), so the world map is omitted."
                .into(),
        );
    }
    let (min, max) = value_range(points.iter().map(|p| p.value));
    let labelled = 8.min(points.len());
    let missing = if unplaced > 0 {
        format!(" {unplaced} countries without coordinates are not shown.")
    } else {
        String::new()
    };
    Ok(Figure {
        id: "world_map".into(),
        title: format!("Securitization cost by country, {}", run.final_year()),
        caption: format!(
            "Each country at its capital's latitude and longitude, coloured by its securitization cost: 100 × (counterfactual − policy) final log productivity, in log points, mean over replications (summary.json). The {labelled} largest costs carry their country code.{missing}"
        ),
        panels: vec![Panel::Map(MapPanel {
            title: String::new(),
            countries: points,
            labelled,
        })],
        columns: 1,
        row_height: 420,
        legend: vec![LegendEntry {
            label: "cost (log points)".into(),
            key: Key::ColourBar { min, max },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::super::chart::{Marks, Panel};
    use super::super::testdata;
    use super::*;
    use crate::stats::t_quantile_975;

    /// Rows of timeseries.csv as (variant, replication, year, group, metric, value).
    fn rows(dir: &Path) -> Vec<(String, u32, f64, String, String, f64)> {
        let mut r = csv::Reader::from_path(dir.join("timeseries.csv")).unwrap();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                (
                    rec[0].to_string(),
                    rec[1].parse().unwrap(),
                    rec[3].parse().unwrap(),
                    rec[4].to_string(),
                    rec[5].to_string(),
                    rec[6].parse().unwrap(),
                )
            })
            .collect()
    }

    /// Mean and t-interval over replications, computed here from scratch.
    fn mean_ci(v: &[f64]) -> (f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt();
        let half = t_quantile_975(v.len() - 1) * sd / n.sqrt();
        (mean, mean - half, mean + half)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    fn xy(panel: &Panel) -> &XyPanel {
        match panel {
            Panel::Xy(p) => p,
            other => panic!("not an xy panel: {other:?}"),
        }
    }

    fn folder() -> (tempfile::TempDir, RunFolder) {
        let tmp = tempfile::tempdir().unwrap();
        testdata::small_run(tmp.path());
        let run = RunFolder::read(tmp.path()).unwrap();
        (tmp, run)
    }

    #[test]
    fn run_figures_are_the_numbers_of_the_files() {
        let (tmp, run) = folder();
        let dir = tmp.path();
        let (figs, notes) = figures(&run);
        assert!(notes.is_empty(), "{notes:?}");
        let ids: Vec<&str> = figs.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "securitization_cost",
                "productivity_by_bloc",
                "productivity_by_income",
                "adoption_by_sector",
                "coinvention_share",
                "trust_and_retaliation",
                "controls",
                "world_map"
            ]
        );
        let summary: Value =
            serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
        let ts = rows(dir);
        let series = |variant: &str, group: &str, metric: &str| -> Vec<(f64, Vec<f64>)> {
            let mut by_year: Vec<(f64, Vec<f64>)> = Vec::new();
            for (v, _, year, g, m, value) in &ts {
                if v == variant && g == group && m == metric {
                    match by_year.iter_mut().find(|(y, _)| y == year) {
                        Some((_, vals)) => vals.push(*value),
                        None => by_year.push((*year, vec![*value])),
                    }
                }
            }
            by_year
        };
        let check_band = |points: &[Point], expected: Vec<(f64, Vec<f64>)>| {
            assert_eq!(points.len(), expected.len());
            for (p, (year, vals)) in points.iter().zip(expected) {
                assert_eq!(vals.len(), 3);
                let (mean, lo, hi) = mean_ci(&vals);
                assert_eq!(p.x, year);
                assert!(close(p.y, mean), "{} vs {mean}", p.y);
                let (l, h) = p.ci.unwrap();
                assert!(close(l, lo) && close(h, hi), "({l}, {h}) vs ({lo}, {hi})");
            }
        };

        // Securitization cost bars: summary.json's numbers, in its order.
        let Panel::Bars(bars) = &figs[0].panels[0] else {
            panic!()
        };
        let cost = summary["securitization_cost"].as_object().unwrap();
        let weighted = &summary["securitization_cost_gdp_weighted"];
        assert_eq!(bars.categories.len(), cost.len());
        for (i, (g, e)) in cost.iter().enumerate() {
            assert_eq!(bars.categories[i], group_label(g));
            let b = bars.series[0].bars[i].unwrap();
            assert_eq!(b.value, e["mean"].as_f64().unwrap());
            assert_eq!(
                b.ci,
                Some((
                    e["ci95_low"].as_f64().unwrap(),
                    e["ci95_high"].as_f64().unwrap()
                ))
            );
            let w = bars.series[1].bars[i].unwrap();
            assert_eq!(w.value, weighted[g]["mean"].as_f64().unwrap());
        }

        // Productivity by bloc: policy and counterfactual bands from the
        // CSV; the gap ends at summary.json's securitization cost.
        let levels = xy(&figs[1].panels[0]);
        let gaps = xy(&figs[1].panels[1]);
        let groups = ["all", "bloc:nonaligned", "bloc:A", "bloc:B"];
        assert_eq!(levels.series.len(), 2 * groups.len());
        for (i, g) in groups.iter().enumerate() {
            assert_eq!(
                levels.series[2 * i].label,
                format!("{} policy", group_label(g))
            );
            assert_eq!(levels.series[2 * i].marks, Marks::Line(Dash::Solid));
            assert_eq!(levels.series[2 * i + 1].marks, Marks::Line(Dash::Dashed));
            check_band(
                &levels.series[2 * i].points,
                series("policy", g, "log_productivity"),
            );
            check_band(
                &levels.series[2 * i + 1].points,
                series("counterfactual", g, "log_productivity"),
            );
            let last = gaps.series[i].points.last().unwrap();
            let want = &summary["securitization_cost"][g];
            assert!(close(last.y, want["mean"].as_f64().unwrap()), "{g}");
            let (lo, hi) = last.ci.unwrap();
            assert!(close(lo, want["ci95_low"].as_f64().unwrap()));
            assert!(close(hi, want["ci95_high"].as_f64().unwrap()));
        }
        let income = xy(&figs[2].panels[0]);
        assert_eq!(income.series.len(), 2 * 5);

        // Adoption: a panel per sector of the manifest, policy then counterfactual.
        assert_eq!(figs[3].panels.len(), run.manifest.sectors.len());
        for (panel, sector) in figs[3].panels.iter().zip(&run.manifest.sectors) {
            let p = xy(panel);
            assert_eq!(p.title, *sector);
            let g = format!("sector:{sector}");
            check_band(&p.series[0].points, series("policy", &g, "adoption_share"));
            check_band(
                &p.series[1].points,
                series("counterfactual", &g, "adoption_share"),
            );
        }

        // Co-invention share and trust, both variants.
        let co = xy(&figs[4].panels[0]);
        check_band(
            &co.series[0].points,
            series("policy", "all", "coinvention_share"),
        );
        check_band(
            &co.series[1].points,
            series("counterfactual", "all", "coinvention_share"),
        );
        let trust = xy(&figs[5].panels[0]);
        check_band(
            &trust.series[6].points,
            series("policy", "bloc:B", "mean_trust"),
        );

        // Retaliations: the running total per replication, then the band.
        let ret = xy(&figs[5].panels[1]);
        let per_step = series("policy", "all", "retaliations_opened");
        let mut totals = [0.0; 3];
        let cumulative: Vec<(f64, Vec<f64>)> = per_step
            .into_iter()
            .map(|(year, vals)| {
                for (t, v) in totals.iter_mut().zip(&vals) {
                    *t += v;
                }
                (year, totals.to_vec())
            })
            .collect();
        let final_total = summary["metrics"]["policy"]["all"]["retaliations_opened_total"]["mean"]
            .as_f64()
            .unwrap();
        assert!(close(ret.series[0].points.last().unwrap().y, final_total));
        assert!(final_total > 0.0, "decoupling opens counter-regimes");
        check_band(&ret.series[0].points, cumulative);

        // Controls: affected economies and the controlled share (policy).
        let c = &figs[6];
        check_band(
            &xy(&c.panels[0]).series[0].points,
            series("policy", "all", "affected_economies"),
        );
        check_band(
            &xy(&c.panels[1]).series[0].points,
            series("policy", "all", "controlled_share"),
        );

        // Map: every country at countries.csv's coordinates, coloured by
        // summary.json's per-country cost.
        let Panel::Map(map) = &figs[7].panels[0] else {
            panic!()
        };
        let mut r = csv::Reader::from_path(dir.join("countries.csv")).unwrap();
        let coords: Vec<(String, f64, f64)> = r
            .records()
            .map(|r| r.unwrap())
            .filter(|r| &r[0] == "policy" && &r[1] == "0")
            .map(|r| {
                (
                    r[2].to_string(),
                    r[12].parse().unwrap(),
                    r[13].parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(map.countries.len(), coords.len());
        assert_eq!(coords.len(), 96);
        for (p, (code, lat, lon)) in map.countries.iter().zip(&coords) {
            assert_eq!((&p.code, p.lat, p.lon), (code, *lat, *lon));
            assert_eq!(
                p.value,
                summary["countries"][code]["securitization_cost"]["mean"]
                    .as_f64()
                    .unwrap()
            );
        }
    }

    #[test]
    fn svgs_hold_a_mark_per_plotted_value() {
        let (_tmp, run) = folder();
        let (figs, _) = figures(&run);
        let count = |svg: &str, pat: &str| svg.matches(pat).count();
        for f in &figs {
            let svg = f.svg().unwrap();
            assert!(svg.starts_with("<svg"), "{}", f.id);
            // Text is SVG text (no font files): the title is there as written.
            assert!(
                svg.contains(&format!("\n{}\n</text>", super::super::html::esc(&f.title))),
                "{}",
                f.id
            );
            match &f.panels[0] {
                Panel::Bars(b) => {
                    // One filled bar per value, plus the legend's two swatches.
                    let bars: usize = b
                        .series
                        .iter()
                        .map(|s| s.bars.iter().flatten().count())
                        .sum();
                    assert_eq!(count(&svg, "opacity=\"0.85\""), bars + 2, "{}", f.id);
                }
                Panel::Map(m) => {
                    // A filled disc and its outline per country.
                    assert_eq!(count(&svg, "<circle"), 2 * m.countries.len());
                    for p in m
                        .countries
                        .iter()
                        .filter(|p| p.value == value_range(m.countries.iter().map(|c| c.value)).1)
                    {
                        assert!(svg.contains(&format!("\n{}\n</text>", p.code)));
                    }
                }
                Panel::Xy(_) => {
                    // One shaded band per series with intervals.
                    let bands: usize = f
                        .panels
                        .iter()
                        .map(|p| {
                            xy(p)
                                .series
                                .iter()
                                .filter(|s| s.points.iter().filter(|p| p.ci.is_some()).count() >= 2)
                                .count()
                        })
                        .sum();
                    assert_eq!(count(&svg, "<polygon"), bands, "{}", f.id);
                }
                Panel::Heat(_) => unreachable!(),
            }
        }
    }

    #[test]
    fn a_world_without_coordinates_has_no_map_but_a_note() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("tiny.toml"), testdata::TINY).unwrap();
        let loaded =
            crate::scenario::load(&dir.join("tiny.toml"), &["replications=2".into()]).unwrap();
        let res = crate::run::run_scenario(&loaded.scenario, 2, &|| {});
        let facts = crate::output::RunFacts {
            origin: "tiny.toml".into(),
            overrides: vec![],
            replications: 2,
            threads: 1,
            wall_time_seconds: 0.0,
            started_at: String::new(),
            command_line: vec![],
        };
        let out = dir.join("out");
        crate::output::write_run(&out, &loaded.scenario, &loaded.table, &res, &facts).unwrap();
        let run = RunFolder::read(&out).unwrap();
        assert!(
            run.countries
                .iter()
                .all(|c| c.lat.is_none() && c.lon.is_none())
        );
        let (figs, notes) = figures(&run);
        assert!(figs.iter().all(|f| f.id != "world_map"));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("world map is omitted"), "{notes:?}");
    }

    #[test]
    fn group_labels() {
        assert_eq!(group_label("all"), "all countries");
        assert_eq!(group_label("bloc:A"), "bloc A");
        assert_eq!(group_label("income:upper_middle"), "upper-middle income");
        assert_eq!(group_label("sector:ai"), "ai");
    }
}
