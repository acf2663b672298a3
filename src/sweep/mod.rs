//! Policy sweeps: a sweep file names a base scenario, a design over scenario
//! keys (the `--set` paths), replications and the metrics to keep. This
//! module reads and checks the file and lays out the design points;
//! [`execute`] runs them (in parallel, resumable, shardable) and writes the
//! results.

pub mod design;
pub mod execute;
pub mod sensitivity;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Value;

use crate::error::InputError;
use crate::scenario::keys::{self, KeyPath, SpanIndex};
use crate::scenario::{self, FileSource, LoadedScenario, Override};
use crate::sim::metrics::{GroupKind, Layout};

/// Most design points and runs a sweep may have.
pub const MAX_POINTS: usize = 1_000_000;
pub const MAX_RUNS: usize = 10_000_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: Option<String>,
    description: Option<String>,
    scenario: String,
    replications: Option<i64>,
    design: Option<String>,
    samples: Option<i64>,
    seed: Option<i64>,
    levels: Option<i64>,
    bootstrap: Option<i64>,
    table: Option<String>,
    metrics: Option<Vec<String>>,
    reference: Option<Value>,
    #[serde(default, rename = "param")]
    params: Vec<ParamFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamFile {
    path: String,
    name: Option<String>,
    values: Option<Vec<Value>>,
    min: Option<f64>,
    max: Option<f64>,
    steps: Option<i64>,
    integer: Option<bool>,
}

/// Experiment designs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    Grid,
    Zip,
    Table,
    Lhs,
    Sobol,
    Morris,
}

impl Design {
    pub fn name(self) -> &'static str {
        match self {
            Design::Grid => "grid",
            Design::Zip => "zip",
            Design::Table => "table",
            Design::Lhs => "lhs",
            Design::Sobol => "sobol",
            Design::Morris => "morris",
        }
    }

    fn parse(s: &str) -> Option<Design> {
        [
            Design::Grid,
            Design::Zip,
            Design::Table,
            Design::Lhs,
            Design::Sobol,
            Design::Morris,
        ]
        .into_iter()
        .find(|d| d.name() == s)
    }

    fn sampled(self) -> bool {
        matches!(self, Design::Lhs | Design::Sobol | Design::Morris)
    }
}

/// One swept scenario key.
#[derive(Debug, Clone)]
pub struct Param {
    pub path: KeyPath,
    /// Column name in outputs (default: the path).
    pub name: String,
    /// For sampled designs: the range the unit interval maps to.
    pub range: Option<(f64, f64)>,
    /// Round sampled values to integers.
    pub integer: bool,
}

/// One design point: a value per parameter, and for sampled designs its
/// coordinates in the unit hypercube.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub values: Vec<Value>,
    pub unit: Option<Vec<f64>>,
}

/// What a kept metric measures.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricKind {
    /// 100 x (counterfactual - policy) final log productivity, group mean.
    SecuritizationCost { gdp_weighted: bool },
    /// A time-series metric at the last step.
    Final { series: String },
    /// A time-series metric summed over all steps.
    Total { series: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// As written in outputs: `metric@group`.
    pub label: String,
    pub kind: MetricKind,
    pub group: String,
}

/// What paired differences in `points.csv` are taken against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The same run's counterfactual variant.
    Counterfactual,
    /// Another design point, replication by replication.
    Point(usize),
}

/// A checked sweep, its design points laid out.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub description: String,
    /// The sweep file as shown in messages, and its text.
    pub file: String,
    pub text: String,
    pub scenario_file: String,
    pub scenario_text: String,
    pub scenario_dir: PathBuf,
    pub table_text: Option<String>,
    pub replications: u32,
    pub design: Design,
    pub samples: Option<usize>,
    pub seed: u64,
    pub levels: usize,
    pub bootstrap: usize,
    pub params: Vec<Param>,
    pub metrics: Vec<MetricSpec>,
    pub reference: Reference,
    pub points: Vec<Point>,
}

struct Ctx<'a> {
    file: &'a str,
    spans: SpanIndex,
}

impl Ctx<'_> {
    fn error(&self, key: &str, msg: impl Into<String>) -> InputError {
        InputError::new(self.file, msg)
            .with_key(key)
            .at(if key.is_empty() {
                None
            } else {
                self.spans.locate(key)
            })
    }
}

impl Sweep {
    /// Read and check a sweep file and lay out its design.
    pub fn load(path: &Path) -> Result<Sweep, InputError> {
        let shown = path.display().to_string();
        let text = scenario::read_text(path).map_err(|e| InputError::new(&shown, e))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Sweep::from_text(&text, &shown, &dir)
    }

    /// The same from a sweep file's text; `dir` resolves its relative paths.
    pub fn from_text(text: &str, shown: &str, dir: &Path) -> Result<Sweep, InputError> {
        let table = scenario::parse_table(text, shown)?;
        let ctx = Ctx {
            file: shown,
            spans: SpanIndex::build(text),
        };
        let raw: SweepFile =
            serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                ctx.error(
                    if key == "." { "" } else { &key },
                    e.inner().message().to_string(),
                )
            })?;
        let int = |key: &str,
                   v: Option<i64>,
                   default: i64,
                   lo: i64,
                   hi: i64|
         -> Result<i64, InputError> {
            let x = v.unwrap_or(default);
            if x < lo || x > hi {
                return Err(ctx.error(
                    key,
                    format!("must be an integer from {lo} to {hi}, got {x}"),
                ));
            }
            Ok(x)
        };
        let name = raw.name.clone().unwrap_or_else(|| {
            Path::new(shown)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sweep".into())
        });
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(ctx.error(
                "name",
                "must be a non-empty name without `/` or `\\` that does not start with `.`",
            ));
        }
        let replications = int("replications", raw.replications, 10, 1, 100_000)? as u32;
        let seed = int("seed", raw.seed, 1, 0, i64::MAX)? as u64;
        let design_name = raw.design.as_deref().unwrap_or("grid");
        let design = Design::parse(design_name).ok_or_else(|| {
            ctx.error(
                "design",
                format!(
                    "unknown design `{design_name}`; allowed: grid, zip, table, lhs, sobol, morris"
                ),
            )
        })?;

        // The base scenario must load as it is.
        let scenario_path = dir.join(&raw.scenario);
        let scenario_file = scenario_path.display().to_string();
        let scenario_text = scenario::read_text(&scenario_path).map_err(|e| {
            ctx.error(
                "scenario",
                format!("{e} (the path is relative to the sweep file)"),
            )
        })?;
        let scenario_dir = match scenario_path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = scenario::load_with(
            &scenario_text,
            &scenario_file,
            FileSource::Disk(scenario_dir.clone()),
            &[],
            "the sweep",
        )?;

        if raw.params.is_empty() {
            return Err(ctx.error(
                "param",
                "a sweep needs at least one [[param]] with a scenario key `path`",
            ));
        }
        let mut params = Vec::new();
        let mut names = BTreeSet::new();
        for (i, p) in raw.params.iter().enumerate() {
            let key = |f: &str| format!("param[{i}].{f}");
            let path = KeyPath::parse(&p.path)
                .map_err(|e| ctx.error(&key("path"), format!("bad key path `{}`: {e}", p.path)))?;
            if matches!(path.segments.first(), Some(keys::Segment::Key(k)) if k == "seed" || k == "replications")
                && path.segments.len() == 1
            {
                return Err(ctx.error(&key("path"), "`seed` and `replications` belong to the sweep (its own `seed` and `replications` keys), not to a parameter"));
            }
            let name = p.name.clone().unwrap_or_else(|| p.path.clone());
            if !names.insert(name.clone()) {
                return Err(ctx.error(&key("name"), format!("duplicate parameter name `{name}`")));
            }
            let has_values = p.values.is_some();
            let has_range = p.min.is_some() || p.max.is_some();
            let range = if has_range {
                let (min, max) = match (p.min, p.max) {
                    (Some(a), Some(b)) => (a, b),
                    _ => return Err(ctx.error(&key("min"), "give both `min` and `max`")),
                };
                if !min.is_finite() || !max.is_finite() || min > max {
                    return Err(ctx.error(
                        &key("min"),
                        format!("need finite min <= max, got [{min}, {max}]"),
                    ));
                }
                Some((min, max))
            } else {
                None
            };
            match design {
                Design::Grid | Design::Zip => {
                    if has_values == has_range {
                        return Err(ctx.error(&key("values"), format!("design `{}` needs either `values = [...]` or `min`, `max` and `steps`", design.name())));
                    }
                    if has_range && p.steps.is_none() {
                        return Err(ctx.error(&key("steps"), "a range needs `steps`, the number of values from min to max (at least 1)"));
                    }
                }
                Design::Table => {
                    if has_values || has_range || p.steps.is_some() {
                        return Err(ctx.error(&key("path"), "design `table` takes its values from the table file; give only `path` (and `name`, the column)"));
                    }
                }
                _ => {
                    if range.is_none() || has_values || p.steps.is_some() {
                        return Err(ctx.error(&key("min"), format!("design `{}` samples each parameter from `min` to `max` (no `values` or `steps`)", design.name())));
                    }
                }
            }
            if p.integer.is_some() && !design.sampled() {
                return Err(ctx.error(
                    &key("integer"),
                    "`integer` applies to sampled designs (lhs, sobol, morris)",
                ));
            }
            params.push(Param {
                path,
                name,
                range,
                integer: p.integer.unwrap_or(false),
            });
        }

        let samples = match (design.sampled(), raw.samples) {
            (true, None) => {
                return Err(ctx.error(
                    "samples",
                    format!("design `{}` needs `samples`", design.name()),
                ));
            }
            (false, Some(_)) => {
                return Err(ctx.error(
                    "samples",
                    format!("design `{}` does not take `samples`", design.name()),
                ));
            }
            (_, s) => s,
        };
        let samples = match samples {
            None => None,
            Some(s) => Some(int("samples", Some(s), 1, 1, MAX_POINTS as i64)? as usize),
        };
        if raw.levels.is_some() && design != Design::Morris {
            return Err(ctx.error("levels", "`levels` applies to design morris"));
        }
        if raw.bootstrap.is_some() && !matches!(design, Design::Sobol | Design::Morris) {
            return Err(ctx.error(
                "bootstrap",
                "`bootstrap` applies to designs sobol and morris",
            ));
        }
        if raw.table.is_some() != (design == Design::Table) {
            return Err(ctx.error(
                "table",
                "design `table` needs `table = \"rows.csv\"`, and only it takes one",
            ));
        }
        let levels = int("levels", raw.levels, 4, 2, 1000)? as usize;
        let bootstrap = int("bootstrap", raw.bootstrap, 200, 10, 100_000)? as usize;
        let d = params.len();

        // Lay out the points.
        let mut table_text = None;
        let points: Vec<Point> = match design {
            Design::Grid | Design::Zip => {
                let lists = raw
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| value_list(p, i, &ctx))
                    .collect::<Result<Vec<_>, _>>()?;
                if design == Design::Zip {
                    let len = lists[0].len();
                    if let Some(i) = lists.iter().position(|l| l.len() != len) {
                        return Err(ctx.error(&format!("param[{i}].values"), format!("design `zip` needs lists of equal length: param[0] has {len} values, param[{i}] has {}", lists[i].len())));
                    }
                    (0..len)
                        .map(|k| Point {
                            values: lists.iter().map(|l| l[k].clone()).collect(),
                            unit: None,
                        })
                        .collect()
                } else {
                    let total = lists
                        .iter()
                        .try_fold(1usize, |acc, l| acc.checked_mul(l.len()));
                    if total.is_none_or(|t| t > MAX_POINTS) {
                        return Err(ctx.error("param", format!("the grid has more than {MAX_POINTS} points; use fewer values or a sampled design (lhs, sobol)")));
                    }
                    grid(&lists)
                }
            }
            Design::Table => {
                let rel = raw.table.as_deref().expect("checked above");
                let path = dir.join(rel);
                let text = scenario::read_text(&path).map_err(|e| {
                    ctx.error(
                        "table",
                        format!("{e} (the path is relative to the sweep file)"),
                    )
                })?;
                let pts = table_points(&text, &path.display().to_string(), &params)?;
                table_text = Some(text);
                pts
            }
            Design::Lhs => {
                let n = samples.expect("checked");
                let mut rng = crate::rng::stream(seed, 0, crate::rng::Purpose::Design, 0, 0);
                unit_points(design::latin_hypercube(n, d, &mut rng), &params)
            }
            Design::Sobol => {
                let n = samples.expect("checked");
                if !n.is_power_of_two() || n < 2 {
                    let lo = n.next_power_of_two() / 2;
                    return Err(ctx.error("samples", format!("design `sobol` needs a power of two (Saltelli scheme), got {n}; try {} or {}", lo.max(2), n.next_power_of_two().max(2))));
                }
                if n > design::SALTELLI_MAX_SAMPLES {
                    return Err(ctx.error(
                        "samples",
                        format!(
                            "design `sobol` takes at most {} base samples, got {n}",
                            design::SALTELLI_MAX_SAMPLES
                        ),
                    ));
                }
                if d > 128 {
                    return Err(ctx.error(
                        "param",
                        format!("design `sobol` takes at most 128 parameters, got {d}"),
                    ));
                }
                if n.saturating_mul(d + 2) > MAX_POINTS {
                    return Err(ctx.error(
                        "samples",
                        format!("{n} x ({d} + 2) points is more than {MAX_POINTS}"),
                    ));
                }
                unit_points(design::saltelli(n, d, seed as u32), &params)
            }
            Design::Morris => {
                let r = samples.expect("checked");
                if r < 2 {
                    return Err(
                        ctx.error("samples", "design `morris` needs at least 2 trajectories")
                    );
                }
                if r.saturating_mul(d + 1) > MAX_POINTS {
                    return Err(ctx.error(
                        "samples",
                        format!("{r} x ({d} + 1) points is more than {MAX_POINTS}"),
                    ));
                }
                let mut rng = crate::rng::stream(seed, 0, crate::rng::Purpose::Design, 0, 0);
                unit_points(design::morris(r, d, levels, &mut rng), &params)
            }
        };
        if points.is_empty() {
            return Err(ctx.error("param", "the design has no points"));
        }
        if points.len().saturating_mul(replications as usize) > MAX_RUNS {
            return Err(ctx.error(
                "replications",
                format!(
                    "{} points x {replications} replications is more than {MAX_RUNS} runs",
                    points.len()
                ),
            ));
        }
        // Every path must be settable on the base scenario.
        let mut probe = scenario::parse_table(&scenario_text, &scenario_file)?;
        for (i, p) in params.iter().enumerate() {
            keys::set_path(&mut probe, &p.path, points[0].values[i].clone()).map_err(|e| {
                ctx.error(
                    &format!("param[{i}].path"),
                    format!("cannot set `{}` in {scenario_file}: {e}", p.path.text),
                )
            })?;
        }

        let metrics = match &raw.metrics {
            Some(list) if list.is_empty() => {
                return Err(ctx.error("metrics", "list at least one metric, or leave the key out"));
            }
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, m)| parse_metric(m, &base, &ctx, &format!("metrics[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            None => default_metrics(&base),
        };
        let reference = match &raw.reference {
            None => Reference::Counterfactual,
            Some(Value::String(s)) if s == "counterfactual" => Reference::Counterfactual,
            Some(Value::Integer(p)) if *p >= 0 && (*p as usize) < points.len() => {
                Reference::Point(*p as usize)
            }
            Some(other) => {
                return Err(ctx.error(
                    "reference",
                    format!(
                        "must be \"counterfactual\" or a design point from 0 to {}, got {other}",
                        points.len() - 1
                    ),
                ));
            }
        };
        Ok(Sweep {
            name,
            description: raw.description.unwrap_or_default(),
            file: shown.to_string(),
            text: text.to_string(),
            scenario_file,
            scenario_text,
            scenario_dir,
            table_text,
            replications,
            design,
            samples,
            seed,
            levels,
            bootstrap,
            params,
            metrics,
            reference,
            points,
        })
    }

    /// Total number of runs (points x replications).
    pub fn runs(&self) -> usize {
        self.points.len() * self.replications as usize
    }

    /// The scenario of one design point, with the sweep's seed.
    pub fn scenario_at(&self, point: usize) -> Result<LoadedScenario, InputError> {
        let mut overrides: Vec<Override> = self
            .params
            .iter()
            .zip(&self.points[point].values)
            .map(|(p, v)| Override {
                path: p.path.clone(),
                value: v.clone(),
            })
            .collect();
        overrides.push(Override {
            path: KeyPath::parse("seed").expect("valid path"),
            value: Value::Integer(self.seed as i64),
        });
        scenario::load_with(
            &self.scenario_text,
            &self.scenario_file,
            FileSource::Disk(self.scenario_dir.clone()),
            &overrides,
            &format!("sweep point {point}"),
        )
    }
}

/// A value list for grid and zip: `values`, or min..max in `steps` values
/// built by index (min + i * (max - min) / (steps - 1)).
fn value_list(p: &ParamFile, i: usize, ctx: &Ctx) -> Result<Vec<Value>, InputError> {
    if let Some(v) = &p.values {
        if v.is_empty() {
            return Err(ctx.error(&format!("param[{i}].values"), "the list of values is empty"));
        }
        return Ok(v.clone());
    }
    let (min, max) = (p.min.expect("checked"), p.max.expect("checked"));
    let steps = p.steps.expect("checked");
    if !(1..=MAX_POINTS as i64).contains(&steps) {
        return Err(ctx.error(
            &format!("param[{i}].steps"),
            format!("must be an integer from 1 to {MAX_POINTS}, got {steps}"),
        ));
    }
    if steps == 1 && min != max {
        return Err(ctx.error(
            &format!("param[{i}].steps"),
            "steps = 1 gives one value: set min = max, or use steps >= 2",
        ));
    }
    let steps = steps as usize;
    Ok((0..steps)
        .map(|k| {
            let x = if steps == 1 {
                min
            } else if k + 1 == steps {
                max
            } else {
                min + (max - min) * k as f64 / (steps - 1) as f64
            };
            Value::Float(x)
        })
        .collect())
}

/// Full factorial, the last parameter varying fastest.
fn grid(lists: &[Vec<Value>]) -> Vec<Point> {
    let mut points = vec![Vec::new()];
    for list in lists {
        points = points
            .into_iter()
            .flat_map(|p| {
                list.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push(v.clone());
                    q
                })
            })
            .collect();
    }
    points
        .into_iter()
        .map(|values| Point { values, unit: None })
        .collect()
}

/// Map unit-cube coordinates to parameter values.
fn unit_points(unit: Vec<Vec<f64>>, params: &[Param]) -> Vec<Point> {
    unit.into_iter()
        .map(|u| {
            let values = params
                .iter()
                .zip(&u)
                .map(|(p, &x)| {
                    let (lo, hi) = p.range.expect("sampled designs have ranges");
                    let v = lo + (hi - lo) * x;
                    if p.integer {
                        Value::Integer(v.round() as i64)
                    } else {
                        Value::Float(v)
                    }
                })
                .collect();
            Point {
                values,
                unit: Some(u),
            }
        })
        .collect()
}

/// Points from a CSV whose header names the parameters; each cell is a TOML
/// value (bare words are strings).
fn table_points(text: &str, shown: &str, params: &[Param]) -> Result<Vec<Point>, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| InputError::new(shown, format!("cannot read the header row: {e}")))?
        .clone();
    let mut columns = Vec::new();
    for p in params {
        let c = headers.iter().position(|h| h == p.name).ok_or_else(|| {
            InputError::new(
                shown,
                format!(
                    "no column `{}` (the parameter's name); columns: {}",
                    p.name,
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            )
            .at(Some((1, 1)))
        })?;
        columns.push(c);
    }
    if let Some(extra) = headers
        .iter()
        .find(|h| !params.iter().any(|p| p.name == *h))
    {
        return Err(InputError::new(
            shown,
            format!(
                "column `{extra}` is not a parameter name; parameters: {}",
                params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .at(Some((1, 1))));
    }
    let mut points = Vec::new();
    for (row, rec) in reader.records().enumerate() {
        let rec = rec
            .map_err(|e| InputError::new(shown, format!("bad row: {e}")).at(Some((row + 2, 1))))?;
        let values = columns
            .iter()
            .map(|&c| keys::parse_override_value(rec.get(c).unwrap_or("")))
            .collect();
        points.push(Point { values, unit: None });
    }
    if points.len() > MAX_POINTS {
        return Err(InputError::new(
            shown,
            format!("more than {MAX_POINTS} rows"),
        ));
    }
    Ok(points)
}

/// `metric` or `metric@group`.
fn parse_metric(
    text: &str,
    base: &LoadedScenario,
    ctx: &Ctx,
    key: &str,
) -> Result<MetricSpec, InputError> {
    let (metric, group) = text.split_once('@').unwrap_or((text, "all"));
    let layout = Layout::new(&base.scenario);
    let group_ok = layout.groups.iter().any(|g| g.name == group);
    if !group_ok {
        let groups: Vec<&str> = layout.groups.iter().map(|g| g.name.as_str()).collect();
        return Err(ctx.error(
            key,
            format!("unknown group `{group}`; groups: {}", groups.join(", ")),
        ));
    }
    let is_country_group = layout
        .groups
        .iter()
        .any(|g| g.name == group && matches!(g.kind, GroupKind::Countries(_)));
    let kind = match metric {
        "securitization_cost" | "securitization_cost_gdp_weighted" => {
            if !is_country_group {
                return Err(ctx.error(
                    key,
                    format!("`{metric}` is defined for country groups, not `{group}`"),
                ));
            }
            MetricKind::SecuritizationCost {
                gdp_weighted: metric.ends_with("_gdp_weighted"),
            }
        }
        m => {
            let (series, total) = match m.strip_suffix("_total") {
                Some(s) => (s, true),
                None => (m, false),
            };
            if layout.find(group, series).is_none() {
                let mut names: Vec<String> = layout
                    .series
                    .iter()
                    .filter(|s| layout.groups[s.group].name == group)
                    .map(|s| s.metric_name())
                    .collect();
                names.insert(0, "securitization_cost".into());
                return Err(ctx.error(key, format!("unknown metric `{m}` for group `{group}`; metrics: {} (any of them + `_total` for the sum over steps)", names.join(", "))));
            }
            if total {
                MetricKind::Total {
                    series: series.to_string(),
                }
            } else {
                MetricKind::Final {
                    series: series.to_string(),
                }
            }
        }
    };
    Ok(MetricSpec {
        label: format!("{metric}@{group}"),
        kind,
        group: group.to_string(),
    })
}

/// Securitization cost for the world, each bloc and each income group.
fn default_metrics(base: &LoadedScenario) -> Vec<MetricSpec> {
    let layout = Layout::new(&base.scenario);
    layout
        .groups
        .iter()
        .filter(|g| matches!(g.kind, GroupKind::Countries(ref m) if !m.is_empty()))
        .map(|g| MetricSpec {
            label: format!("securitization_cost@{}", g.name),
            kind: MetricKind::SecuritizationCost {
                gdp_weighted: false,
            },
            group: g.name.clone(),
        })
        .collect()
}

/// A parameter value as written in CSV cells: strings bare, others as TOML.
pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
