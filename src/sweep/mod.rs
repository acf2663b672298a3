//! Policy sweeps: a sweep file names a base scenario, a design over scenario
//! keys (the `--set` paths), replications and the metrics to keep. This
//! module reads and checks the file and lays out the design points;
//! [`execute`] runs them (in parallel, resumable, shardable) and writes the
//! results.

pub mod design;
pub mod execute;
pub mod sensitivity;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Value;

use crate::error::InputError;
use crate::scenario::file::ScenarioFile;
use crate::scenario::keys::{self, KeyPath, SpanIndex};
use crate::scenario::{self, FileSource, LoadedScenario, Override};
use crate::sim::metrics::{GroupKind, Layout};

/// Most design points and runs a sweep may have.
pub const MAX_POINTS: usize = 1_000_000;
pub const MAX_RUNS: usize = 10_000_000;

/// The columns a sweep writes besides the parameters' and the metrics' (in
/// runs.csv, failures.csv and points.csv: `execute::run_header` and
/// `execute::finalize`): no parameter may be named after one of them.
pub const RESERVED_COLUMNS: [&str; 6] =
    ["point", "replication", "seed", "status", "error", "runs_ok"];

/// Most distinct value shapes (types, array lengths, table keys) per
/// parameter whose scenario key is type-checked before the sweep runs; the
/// values of any further shapes are checked by their runs.
const MAX_SHAPES_CHECKED: usize = 16;

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
                let key = if key == "." { String::new() } else { key };
                let message = e.inner().message();
                // serde names a missing key in its message: name it as the key.
                match message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.strip_suffix('`'))
                {
                    Some(field) => {
                        let full = if key.is_empty() {
                            field.to_string()
                        } else {
                            format!("{key}.{field}")
                        };
                        ctx.error(&full, "required, and missing")
                    }
                    None => ctx.error(&key, scenario::clean_serde_message(message)),
                }
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

        // The base scenario must load as it is. Named without `dir/..`
        // where that names the same file (not so past a symbolic link).
        let scenario_path = clean_if_same(dir.join(&raw.scenario));
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
        let mut params: Vec<Param> = Vec::new();
        let mut names = BTreeSet::new();
        let mut canonical: Vec<String> = Vec::new();
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
            // Where the name stands: its own key, or the path it defaults to.
            let name_key = key(if p.name.is_some() { "name" } else { "path" });
            if name.is_empty() {
                return Err(ctx.error(
                    &name_key,
                    "a parameter's name is its column in runs.csv and points.csv: give a non-empty name, or leave `name` out to use the path",
                ));
            }
            if RESERVED_COLUMNS.contains(&name.as_str()) {
                return Err(ctx.error(
                    &name_key,
                    format!(
                        "`{name}` is a column the sweep writes itself; a parameter's name (its column in runs.csv and points.csv) may be any non-empty text but {}, or a metric's column (`metric@group`)",
                        RESERVED_COLUMNS.join(", ")
                    ),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(ctx.error(&key("name"), format!("duplicate parameter name `{name}`")));
            }
            // One parameter per scenario key: compare the canonical paths
            // (`[name]` resolved to `[index]`), and refuse a key inside
            // another's (the later would silently replace or patch it).
            let canon = keys::canonical(&base.table, &path);
            if let Some(j) = canonical.iter().position(|c| overlaps(c, &canon)) {
                let other = if params[j].name == raw.params[j].path {
                    format!("param[{j}] (`{}`)", params[j].name)
                } else {
                    format!(
                        "param[{j}] (`{}`, path `{}`)",
                        params[j].name, raw.params[j].path
                    )
                };
                let relation = if canonical[j] == canon {
                    format!("the same scenario key as {other}")
                } else if canon.len() > canonical[j].len() {
                    format!("a key inside `{}`, which {other} sets", canonical[j])
                } else {
                    format!("a table holding `{}`, which {other} sets", canonical[j])
                };
                return Err(ctx.error(
                    &key("path"),
                    format!(
                        "`{}` sets {relation}; each scenario key may be set by one parameter only",
                        p.path
                    ),
                ));
            }
            canonical.push(canon);
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
                    // A sampled parameter that cannot vary would get
                    // indices (or effects) of 0 that read as "no
                    // influence" when it was never tried.
                    if let Some((min, max)) = range {
                        let fixed = if p.integer.unwrap_or(false) {
                            (min.round() == max.round()).then(|| {
                                format!("min and max round to the same integer ({})", min.round())
                            })
                        } else {
                            (min == max).then(|| format!("min = max = {min}"))
                        };
                        if let Some(what) = fixed {
                            return Err(ctx.error(
                                &key("max"),
                                format!("design `{}` needs a range to sample, got {what}: to hold the parameter fixed, set it in the scenario instead", design.name()),
                            ));
                        }
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
                    // The powers of two on either side of n, at least 2.
                    let above = n.next_power_of_two().max(2);
                    let below = (above / 2).max(2);
                    let suggest = if below == above || n < 2 {
                        format!("try {above}")
                    } else {
                        format!("try {below} or {above}")
                    };
                    return Err(ctx.error("samples", format!("design `sobol` needs a power of two of at least 2 (Saltelli scheme), got {n}; {suggest}")));
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
        // Every path must be a key of the base scenario that takes the
        // design's values (their ranges are the runs' to check).
        check_settable(&ctx, &raw, &base, &scenario_file, &params, &points, design)?;

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
        // Every output column once: a metric's label is its column in
        // runs.csv, and `label:mean` and the like in points.csv.
        for (i, m) in metrics.iter().enumerate() {
            if let Some(j) = metrics[..i].iter().position(|o| o.label == m.label) {
                let (a, b) = (metric_text(&raw, j), metric_text(&raw, i));
                return Err(ctx.error(
                    &format!("metrics[{i}]"),
                    format!(
                        "`{b}` makes the column `{}`, as metrics[{j}] (`{a}`) does (the group defaults to `all`): list each metric once",
                        m.label
                    ),
                ));
            }
        }
        for (i, p) in params.iter().enumerate() {
            let clash = metrics.iter().find(|m| {
                p.name
                    .strip_prefix(m.label.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
            });
            if let Some(m) = clash {
                let field = if raw.params[i].name.is_some() {
                    "name"
                } else {
                    "path"
                };
                return Err(ctx.error(
                    &format!("param[{i}].{field}"),
                    format!(
                        "`{}` is a column of metric `{}` in the outputs; a parameter's name (its column in runs.csv and points.csv) may be any non-empty text but a metric's column (`metric@group`, and `metric@group:...` in points.csv) or {}",
                        p.name,
                        m.label,
                        RESERVED_COLUMNS.join(", ")
                    ),
                ));
            }
        }
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

/// Check, before anything runs, that every parameter's key is one the
/// scenario has and takes the values the design gives it, as `--set` is
/// checked: the first point's values are set on the base scenario's table,
/// which must then read as a scenario file (no unknown key, no value of the
/// wrong type). For grid, zip and table designs, one value of each further
/// shape a parameter takes (type, array length, table keys; at most
/// [`MAX_SHAPES_CHECKED`]) is checked the same way, set on that probe;
/// sampled designs give each parameter numbers of one type. One check per
/// parameter and shape, not per point. Ranges and cross-references are not
/// checked here: a value out of range fails the runs of its point only.
fn check_settable(
    ctx: &Ctx,
    raw: &SweepFile,
    base: &LoadedScenario,
    scenario_file: &str,
    params: &[Param],
    points: &[Point],
    design: Design,
) -> Result<(), InputError> {
    let canonical: Vec<String> = params
        .iter()
        .map(|p| keys::canonical(&base.table, &p.path))
        .collect();
    let set = |table: &mut toml::Table, i: usize, value: &Value| {
        let p = &params[i];
        keys::set_path(table, &p.path, value.clone()).map_err(|e| {
            ctx.error(
                &format!("param[{i}].path"),
                format!("cannot set `{}` in {scenario_file}: {e}", p.path.text),
            )
        })
    };
    // Parameter `i`'s value at `point` refused at scenario key `key`.
    let refusal = |i: usize, point: usize, key: &str, message: &str| -> InputError {
        let (rp, value) = (&raw.params[i], &points[point].values[i]);
        let is_path = key.len() < canonical[i].len()
            || (key == canonical[i] && message.starts_with("unknown field"));
        let field = if is_path {
            "path".to_string()
        } else {
            match (&rp.values, rp.min) {
                (Some(list), _) => match list.iter().position(|v| v == value) {
                    Some(k) => format!("values[{k}]"),
                    None => "values".into(),
                },
                (None, Some(_)) => "min".into(),
                _ => "path".into(),
            }
        };
        let origin = match (design, &raw.table) {
            (Design::Table, Some(t)) => {
                format!(" (design point {point}, row {} of `{t}`)", point + 1)
            }
            _ if point > 0 => format!(" (design point {point})"),
            _ => String::new(),
        };
        let at = if key == canonical[i] {
            String::new()
        } else {
            format!("key `{key}`: ")
        };
        let hint = if design.sampled()
            && matches!(value, Value::Float(_))
            && message.contains("expected an integer")
        {
            " (set `integer = true` to round the sampled values)"
        } else {
            ""
        };
        ctx.error(
            &format!("param[{i}].{field}"),
            format!(
                "cannot set `{}` = {value}{origin} in {scenario_file}: {at}{message}{hint}",
                rp.path
            ),
        )
    };
    let mut probe = base.table.clone();
    for i in 0..params.len() {
        set(&mut probe, i, &points[0].values[i])?;
    }
    if let Err((key, message)) = reads_as_scenario(probe.clone()) {
        // The parameter whose key holds, or is inside, the key refused
        // (keys of two parameters never overlap).
        return Err(
            match (0..params.len()).rev().find(|&i| overlaps(&canonical[i], &key)) {
                Some(i) => refusal(i, 0, &key, &message),
                None => ctx.error(
                    "param",
                    format!(
                        "the first design point does not make a scenario of {scenario_file}: key `{key}`: {message}"
                    ),
                ),
            },
        );
    }
    if design.sampled() {
        return Ok(());
    }
    let mut buf = String::new();
    for i in 0..params.len() {
        let mut seen: HashSet<String> = HashSet::new();
        shape(&points[0].values[i], &mut buf);
        seen.insert(std::mem::take(&mut buf));
        for (n, point) in points.iter().enumerate().skip(1) {
            if seen.len() >= MAX_SHAPES_CHECKED {
                break;
            }
            buf.clear();
            shape(&point.values[i], &mut buf);
            if seen.contains(buf.as_str()) {
                continue;
            }
            seen.insert(buf.clone());
            let mut table = probe.clone();
            set(&mut table, i, &point.values[i])?;
            if let Err((key, message)) = reads_as_scenario(table) {
                return Err(refusal(i, n, &key, &message));
            }
        }
    }
    Ok(())
}

/// Whether a scenario table reads as a scenario file (keys and types only,
/// as serde sees them); else the key refused and why.
fn reads_as_scenario(table: toml::Table) -> Result<(), (String, String)> {
    serde_path_to_error::deserialize::<_, ScenarioFile>(Value::Table(table))
        .map(drop)
        .map_err(|e| {
            let key = e.path().to_string();
            (
                if key == "." { String::new() } else { key },
                scenario::clean_serde_message(e.inner().message()),
            )
        })
}

/// A value's shape, what serde's reading of it depends on: its type, and
/// for arrays and tables their elements' shapes (so their lengths) and keys.
fn shape(v: &Value, out: &mut String) {
    match v {
        Value::String(_) => out.push('s'),
        Value::Integer(_) => out.push('i'),
        Value::Float(_) => out.push('f'),
        Value::Boolean(_) => out.push('b'),
        Value::Datetime(_) => out.push('d'),
        Value::Array(a) => {
            out.push('[');
            for x in a {
                shape(x, out);
            }
            out.push(']');
        }
        Value::Table(t) => {
            out.push('{');
            for (k, x) in t {
                out.push_str(&format!("{k:?}="));
                shape(x, out);
                out.push(';');
            }
            out.push('}');
        }
    }
}

/// Whether two canonical key paths set the same key, or one a key inside
/// the other.
fn overlaps(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.strip_prefix(short)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The `i`-th metric as written in the sweep file.
fn metric_text(raw: &SweepFile, i: usize) -> &str {
    raw.metrics
        .as_ref()
        .and_then(|l| l.get(i))
        .map_or("", String::as_str)
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
    for (k, h) in headers.iter().enumerate() {
        if let Some(first) = headers.iter().take(k).position(|o| o == h) {
            return Err(InputError::new(
                shown,
                format!(
                    "column `{h}` appears twice in the header (columns {} and {}): give each parameter one column, named after it",
                    first + 1,
                    k + 1
                ),
            )
            .at(Some((1, header_column(text, k)))));
        }
    }
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

/// The 1-based character column where field `k` of a CSV's header line
/// starts (its first non-blank character); 1 when the line has quotes,
/// whose fields cannot be found by splitting at commas.
fn header_column(text: &str, k: usize) -> usize {
    let line = text.lines().next().unwrap_or("");
    if line.contains('"') {
        return 1;
    }
    let mut col = 1;
    for (i, field) in line.split(',').enumerate() {
        if i == k {
            let blank = field.len() - field.trim_start().len();
            return col + field[..blank].chars().count();
        }
        col += field.chars().count() + 1;
    }
    1
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

/// `path` without `.` and `dir/..` components where that is the same
/// file (compared after resolving links); else `path` as it is (past a
/// symbolic link to a directory, `link/..` is not the link's parent).
fn clean_if_same(path: PathBuf) -> PathBuf {
    use path_clean::PathClean;
    let clean = path.clean();
    match (std::fs::canonicalize(&path), std::fs::canonicalize(&clean)) {
        (Ok(a), Ok(b)) if a == b => clean,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_key_paths() {
        assert!(overlaps("trust.erosion", "trust.erosion"));
        assert!(overlaps("trust", "trust.erosion"));
        assert!(overlaps(
            "policy.export_control[0].sectors",
            "policy.export_control[0]"
        ));
        assert!(overlaps(
            "policy.export_control",
            "policy.export_control[0].cost"
        ));
        assert!(!overlaps("trust.erosion", "trust.erosion_x"));
        assert!(!overlaps(
            "policy.export_control[1]",
            "policy.export_control[10]"
        ));
        assert!(!overlaps("trust.erosion", "trust.recovery"));
    }

    /// `sweeps/../base.toml` is shown as `base.toml`, except past a
    /// symbolic link, where `link/..` is elsewhere.
    #[test]
    fn the_base_scenario_path_is_cleaned_only_where_it_names_the_same_file() {
        let tmp = tempfile::tempdir().expect("a temporary folder");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/sweeps")).expect("folders");
        std::fs::write(root.join("a/base.toml"), "").expect("a file");
        let plain = root.join("a/sweeps/./../base.toml");
        assert_eq!(clean_if_same(plain), root.join("a/base.toml"));
        #[cfg(unix)]
        {
            // root/link -> root/a/sweeps: root/link/.. is root/a, where
            // base.toml is, not root, where it is not.
            std::os::unix::fs::symlink(root.join("a/sweeps"), root.join("link")).expect("a link");
            let through = root.join("link/../base.toml");
            assert_eq!(clean_if_same(through.clone()), through);
            // Where both exist but differ, the path is kept too.
            std::fs::write(root.join("base.toml"), "").expect("a file");
            assert_eq!(clean_if_same(through.clone()), through);
        }
    }

    #[test]
    fn header_columns_point_at_the_field() {
        assert_eq!(header_column("e,e,r\n0,1,2\n", 1), 3);
        assert_eq!(header_column("e, r,  e\n", 2), 8);
        assert_eq!(header_column("\"e\",\"e\"\n", 1), 1);
    }

    #[test]
    fn shapes_tell_types_lengths_and_keys_apart() {
        let s = |text: &str| {
            let mut out = String::new();
            shape(&keys::parse_override_value(text), &mut out);
            out
        };
        assert_eq!(s("0.1"), s("0.7"));
        assert_ne!(s("0.1"), s("1"));
        assert_ne!(s("0.1"), s("high"));
        assert_eq!(s("[[0, 0.5]]"), s("[[3, 0.9]]"));
        assert_ne!(s("[[0, 0.5]]"), s("[[0]]"));
        assert_eq!(s("{ a = 1 }"), s("{ a = 2 }"));
        assert_ne!(s("{ a = 1 }"), s("{ b = 1 }"));
    }
}
