//! From a [`ScenarioFile`] (what the user wrote) to a validated [`Scenario`]:
//! defaults, ranges, references, sizes. Every message names the file, the key
//! path and what is allowed.

use std::collections::{BTreeMap, HashMap, HashSet};

use ndarray::Array2;
use serde::Deserialize;

use super::FileSource;
use super::file::*;
use super::keys::SpanIndex;
use crate::error::InputError;
use crate::model::*;
use crate::network::{self, GravityParams};
use crate::rng::{self, Purpose};

/// Largest world and run the simulator accepts; beyond them a run would not
/// fit in memory on any machine it is meant for.
pub const MAX_COUNTRIES: usize = 5_000;
pub const MAX_STEPS: i64 = 10_000;
pub const MAX_REPLICATIONS: i64 = 100_000;
pub const MAX_SECTORS: usize = 1_000;
/// Exposure and threshold state is 16 bytes per (country, innovation) pair.
pub const MAX_STATE_BYTES: f64 = 12.0 * (1u64 << 30) as f64;

pub struct Context {
    pub file: String,
    pub spans: SpanIndex,
    /// Canonical key paths set by overrides, and who set them.
    pub overridden: Vec<String>,
    pub override_source: String,
}

impl Context {
    pub fn error(&self, key: &str, message: impl Into<String>) -> InputError {
        let mut message = message.into();
        if self.overridden.iter().any(|o| key.starts_with(o.as_str())) {
            message.push_str(&format!(" (value set {})", self.override_source));
        }
        InputError::new(&self.file, message)
            .with_key(key)
            .at(if key.is_empty() {
                None
            } else {
                self.spans.locate(key)
            })
    }

    /// A finite number in a range, or the default.
    fn num(
        &self,
        key: &str,
        v: Option<f64>,
        default: f64,
        range: Range,
    ) -> Result<f64, InputError> {
        match v {
            None => Ok(default),
            Some(x) => self.check(key, x, range),
        }
    }

    fn check(&self, key: &str, x: f64, range: Range) -> Result<f64, InputError> {
        if !x.is_finite() {
            return Err(self.error(
                key,
                format!("must be a finite number {}, got {x}", range.describe()),
            ));
        }
        if !range.contains(x) {
            return Err(self.error(key, format!("must be {}, got {x}", range.describe())));
        }
        Ok(x)
    }

    fn int(
        &self,
        key: &str,
        v: Option<i64>,
        default: i64,
        lo: i64,
        hi: i64,
    ) -> Result<i64, InputError> {
        let x = v.unwrap_or(default);
        if x < lo || x > hi {
            return Err(self.error(
                key,
                format!("must be an integer from {lo} to {hi}, got {x}"),
            ));
        }
        Ok(x)
    }
}

#[derive(Clone, Copy)]
enum Range {
    /// [lo, hi]
    Closed(f64, f64),
    /// >= lo
    AtLeast(f64),
    /// > lo
    Above(f64),
}

impl Range {
    const UNIT: Range = Range::Closed(0.0, 1.0);
    const NON_NEGATIVE: Range = Range::AtLeast(0.0);
    const POSITIVE: Range = Range::Above(0.0);

    fn contains(self, x: f64) -> bool {
        match self {
            Range::Closed(a, b) => x >= a && x <= b,
            Range::AtLeast(a) => x >= a,
            Range::Above(a) => x > a,
        }
    }

    fn describe(self) -> String {
        match self {
            Range::Closed(a, b) => format!("in [{a}, {b}]"),
            Range::AtLeast(a) => format!(">= {a}"),
            Range::Above(a) => format!("> {a}"),
        }
    }
}

pub fn build(raw: ScenarioFile, ctx: &Context, files: &FileSource) -> Result<Scenario, InputError> {
    let steps = ctx.int("steps", raw.steps, 50, 1, MAX_STEPS)? as u32;
    let start_year = ctx.int("start_year", raw.start_year, 0, -100_000, 100_000)?;
    let seed = ctx.int("seed", raw.seed, 1, 0, i64::MAX)? as u64;
    let replications = ctx.int("replications", raw.replications, 10, 1, MAX_REPLICATIONS)? as u32;
    let name = raw.name.clone().unwrap_or_else(|| {
        std::path::Path::new(&ctx.file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into())
    });
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(ctx.error("name", "must be a non-empty name without `/` or `\\` that does not start with `.` (it names the results folder)"));
    }

    let diffusion_file = raw.diffusion.clone();
    let diffusion = DiffusionParams {
        beta: ctx.num(
            "diffusion.beta",
            diffusion_file.as_ref().and_then(|d| d.beta),
            0.8,
            Range::NON_NEGATIVE,
        )?,
        trust_exponent: ctx.num(
            "diffusion.trust_exponent",
            diffusion_file.as_ref().and_then(|d| d.trust_exponent),
            0.5,
            Range::NON_NEGATIVE,
        )?,
        reinvention: ctx.num(
            "diffusion.reinvention",
            diffusion_file.as_ref().and_then(|d| d.reinvention),
            0.002,
            Range::NON_NEGATIVE,
        )?,
    };

    let sectors = build_sectors(&raw.sector, diffusion.reinvention, ctx)?;
    let inno = raw.innovation.clone();
    let innovation = InnovationParams {
        per_step: ctx.num(
            "innovation.per_step",
            inno.as_ref().and_then(|i| i.per_step),
            200.0,
            Range::Closed(0.0, 1e6),
        )?,
        frontier_growth: ctx.num(
            "innovation.frontier_growth",
            inno.as_ref().and_then(|i| i.frontier_growth),
            0.015,
            Range::Closed(0.0, 10.0),
        )?,
        coinvention: ctx.num(
            "innovation.coinvention",
            inno.as_ref().and_then(|i| i.coinvention),
            0.2,
            Range::NON_NEGATIVE,
        )?,
        knowledge_elasticity: ctx.num(
            "innovation.knowledge_elasticity",
            inno.as_ref().and_then(|i| i.knowledge_elasticity),
            0.0,
            Range::Closed(-100.0, 100.0),
        )?,
    };
    // Expected innovations in a run, for the size check made as soon as the
    // number of countries is known (before the network is built).
    let expected_innovations = innovation.per_step * f64::from(steps)
        + inno
            .as_ref()
            .map(|i| {
                i.initial
                    .iter()
                    .map(|x| x.count.unwrap_or(1).max(0) as f64)
                    .sum::<f64>()
            })
            .unwrap_or(0.0);
    let world = build_world(&raw, &sectors, seed, expected_innovations, ctx, files)?;
    // GDP-weighted figures divide by the total: it must be a number.
    if !world
        .countries
        .iter()
        .map(|c| c.gdp)
        .sum::<f64>()
        .is_finite()
    {
        return Err(ctx.error(
            "world",
            "the countries' GDPs add up beyond the largest number (about 1.8e308): give them in a larger unit (any unit works)",
        ));
    }
    let initial = build_initial(
        inno.as_ref().map(|i| i.initial.as_slice()).unwrap_or(&[]),
        &world,
        &sectors,
        ctx,
    )?;

    let trust = build_trust(raw.trust.as_ref(), &world, ctx)?;
    let cooperation = build_cooperation(
        raw.policy.as_ref().and_then(|p| p.cooperation.as_ref()),
        &sectors,
        ctx,
    )?;
    let regimes = match &raw.policy {
        Some(p) => p
            .export_control
            .iter()
            .enumerate()
            .map(|(i, r)| build_regime(i, r, &world, &sectors, ctx))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let mut names = HashSet::new();
    for (i, r) in regimes.iter().enumerate() {
        if !names.insert(r.name.clone()) {
            return Err(ctx.error(
                &format!("policy.export_control[{i}].name"),
                format!("duplicate regime name `{}`: names must be unique", r.name),
            ));
        }
    }

    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        steps,
        start_year,
        seed,
        replications,
        world,
        sectors,
        innovation,
        initial,
        diffusion,
        trust,
        cooperation,
        regimes,
    })
}

fn build_sectors(
    raw: &[SectorFile],
    default_nu: f64,
    ctx: &Context,
) -> Result<Vec<Sector>, InputError> {
    if raw.is_empty() {
        // One undifferentiated sector; see docs/MODEL.md.
        return Ok(vec![Sector {
            name: "general".into(),
            sensitivity: 1.0,
            weight: 1.0,
            share: 1.0,
            step_scale: 1.0,
            reinvention: default_nu,
        }]);
    }
    if raw.len() > MAX_SECTORS {
        return Err(ctx.error(
            "sector",
            format!("at most {MAX_SECTORS} sectors, got {}", raw.len()),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let k = |f: &str| format!("sector[{i}].{f}");
        if !valid_name(&s.name) {
            return Err(ctx.error(
                &k("name"),
                "must be a non-empty name of letters, digits, `_` or `-`",
            ));
        }
        if !seen.insert(s.name.clone()) {
            return Err(ctx.error(
                &k("name"),
                format!("duplicate sector name `{}`: names must be unique", s.name),
            ));
        }
        out.push(Sector {
            name: s.name.clone(),
            sensitivity: ctx.num(&k("sensitivity"), s.sensitivity, 0.0, Range::UNIT)?,
            weight: ctx.num(&k("weight"), s.weight, 1.0, Range::NON_NEGATIVE)?,
            share: ctx.num(&k("share"), s.share, 1.0, Range::NON_NEGATIVE)?,
            step_scale: ctx.num(&k("step_scale"), s.step_scale, 1.0, Range::POSITIVE)?,
            reinvention: ctx.num(
                &k("reinvention"),
                s.reinvention,
                default_nu,
                Range::NON_NEGATIVE,
            )?,
        });
    }
    let total: f64 = out.iter().map(|s| s.share).sum();
    if total <= 0.0 {
        return Err(ctx.error("sector", "the sectors' `share` values must not all be 0"));
    }
    // Shares are normalised by their total: it must be a number.
    if !total.is_finite() {
        return Err(ctx.error(
            "sector",
            "the sectors' `share` values add up beyond the largest number (about 1.8e308): only their ratios matter, so give smaller ones",
        ));
    }
    for s in &mut out {
        s.share /= total;
    }
    Ok(out)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// A country row from a CSV file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountryRow {
    code: String,
    name: Option<String>,
    bloc: Option<String>,
    income: Option<String>,
    gdp: Option<f64>,
    rd: Option<f64>,
    absorptive: Option<f64>,
    openness: Option<f64>,
    lat: Option<f64>,
    lon: Option<f64>,
    log_productivity: Option<f64>,
    retaliation_threshold: Option<f64>,
}

impl From<CountryRow> for CountryFile {
    fn from(r: CountryRow) -> Self {
        CountryFile {
            code: r.code,
            name: r.name.filter(|s| !s.is_empty()),
            bloc: r.bloc.filter(|s| !s.is_empty()),
            income: r.income.filter(|s| !s.is_empty()),
            gdp: r.gdp,
            rd: r.rd,
            absorptive: r.absorptive,
            openness: r.openness,
            lat: r.lat,
            lon: r.lon,
            log_productivity: r.log_productivity,
            retaliation_threshold: r.retaliation_threshold,
            specialization: None,
        }
    }
}

const COUNTRY_COLUMNS: &str = "code, name, bloc, income, gdp, rd, absorptive, openness, lat, lon, log_productivity, retaliation_threshold";

fn read_countries_csv(
    rel: &str,
    ctx: &Context,
    files: &FileSource,
) -> Result<(String, Vec<CountryFile>), InputError> {
    let (shown, text) = files
        .read(rel, "world.countries", &ctx.file)
        .map_err(|e| ctx.error("world.countries", e.message))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| InputError::new(&shown, format!("cannot read the header row: {e}")))?
        .clone();
    for h in headers.iter() {
        if !COUNTRY_COLUMNS.split(", ").any(|c| c == h) {
            return Err(InputError::new(
                &shown,
                format!("unknown column `{h}`; allowed columns: {COUNTRY_COLUMNS}"),
            )
            .at(Some((1, 1))));
        }
    }
    if !headers.iter().any(|h| h == "code") {
        return Err(InputError::new(
            &shown,
            format!("the header has no `code` column; allowed columns: {COUNTRY_COLUMNS}"),
        )
        .at(Some((1, 1))));
    }
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let bad_row = |e: &csv::Error| {
            let line = e.position().map(|p| p.line() as usize);
            InputError::new(&shown, format!("bad row: {}", csv_message(e))).at(line.map(|l| (l, 1)))
        };
        let rec = rec.map_err(|e| bad_row(&e))?;
        let row: CountryRow = rec.deserialize(Some(&headers)).map_err(|e| {
            // Name the column and the value: "column `gdp`: `lots` is not a number".
            // Every column but the text ones (code, name, bloc, income) is a number.
            let (f, kind) = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } if err.field().is_some() => {
                    (err.field().unwrap_or(0) as usize, err.kind().to_string())
                }
                _ => return bad_row(&e),
            };
            let line = rec.position().map_or(i + 2, |p| p.line() as usize);
            InputError::new(
                &shown,
                format!(
                    "row {} (line {line}), column `{}`: `{}` is not a number ({kind})",
                    i + 1,
                    headers.get(f).unwrap_or("?"),
                    rec.get(f).unwrap_or(""),
                ),
            )
            .at(Some((line, 1)))
        })?;
        rows.push(row.into());
    }
    Ok((shown, rows))
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let field = err
                .field()
                .map(|f| format!("field {}: ", f + 1))
                .unwrap_or_default();
            format!("{field}{}", err.kind())
        }
        _ => e.to_string(),
    }
}

fn build_world(
    raw: &ScenarioFile,
    sectors: &[Sector],
    seed: u64,
    expected_innovations: f64,
    ctx: &Context,
    files: &FileSource,
) -> Result<World, InputError> {
    let Some(w) = &raw.world else {
        return Err(ctx.error(
            "world",
            "the scenario has no world: give `world.countries = \"file.csv\"`, `[[world.country]]` entries or `[world.synthetic]`",
        ));
    };
    let sources = usize::from(w.countries.is_some())
        + usize::from(!w.country.is_empty())
        + usize::from(w.synthetic.is_some());
    if sources == 0 {
        return Err(ctx.error(
            "world",
            "the world has no countries: give `world.countries = \"file.csv\"`, `[[world.country]]` entries or `[world.synthetic]`",
        ));
    }
    if sources > 1 {
        return Err(ctx.error(
            "world",
            "give exactly one of `world.countries` (CSV file), `[[world.country]]` (inline) and `[world.synthetic]`",
        ));
    }
    let (origin, key_prefix, countries): (String, String, Vec<CountryFile>) =
        if let Some(rel) = &w.countries {
            let (shown, rows) = read_countries_csv(rel, ctx, files)?;
            (shown, String::new(), rows)
        } else if let Some(syn) = &w.synthetic {
            (
                ctx.file.clone(),
                "world.synthetic".into(),
                synthetic_countries(syn, seed, ctx)?,
            )
        } else {
            (ctx.file.clone(), "world.country".into(), w.country.clone())
        };
    if countries.is_empty() {
        return Err(InputError::new(
            &origin,
            "the world has no countries (at least one is needed)",
        ));
    }
    if countries.len() > MAX_COUNTRIES {
        return Err(InputError::new(
            &origin,
            format!("at most {MAX_COUNTRIES} countries, got {}", countries.len()),
        ));
    }

    let from_csv = w.countries.is_some();
    // Errors in a CSV name the CSV file and the row; inline ones the key path.
    let row_err = |i: usize, field: &str, msg: String| -> InputError {
        if from_csv {
            InputError::new(
                &origin,
                format!("row {} (line {}), column `{field}`: {msg}", i + 1, i + 2),
            )
            .at(Some((i + 2, 1)))
        } else if key_prefix == "world.country" {
            ctx.error(&format!("world.country[{i}].{field}"), msg)
        } else {
            ctx.error(&format!("{key_prefix}.{field}"), msg)
        }
    };
    let check = |i: usize,
                 field: &str,
                 v: Option<f64>,
                 default: f64,
                 range: Range|
     -> Result<f64, InputError> {
        match v {
            None => Ok(default),
            Some(x) if x.is_finite() && range.contains(x) => Ok(x),
            Some(x) => Err(row_err(
                i,
                field,
                format!("must be a finite number {}, got {x}", range.describe()),
            )),
        }
    };

    let mut blocs: Vec<String> = Vec::new();
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(countries.len());
    for (i, c) in countries.iter().enumerate() {
        if !valid_name(&c.code) {
            return Err(row_err(
                i,
                "code",
                format!(
                    "`{}` is not a valid code: use letters, digits, `_` or `-`",
                    c.code
                ),
            ));
        }
        if let Some(prev) = seen.insert(c.code.clone(), i) {
            return Err(row_err(
                i,
                "code",
                format!(
                    "duplicate country code `{}` (also at entry {}): codes must be unique",
                    c.code,
                    prev + 1
                ),
            ));
        }
        let bloc_label = c.bloc.clone().unwrap_or_else(|| "none".into());
        if !valid_name(&bloc_label) {
            return Err(row_err(
                i,
                "bloc",
                format!(
                    "`{bloc_label}` is not a valid bloc label: use letters, digits, `_` or `-`"
                ),
            ));
        }
        let bloc = match blocs.iter().position(|b| *b == bloc_label) {
            Some(b) => b,
            None => {
                blocs.push(bloc_label);
                blocs.len() - 1
            }
        };
        let income = match &c.income {
            None => Income::High,
            Some(s) => Income::parse(s).ok_or_else(|| {
                row_err(i, "income", format!("`{s}` is not an income group; allowed: high, upper_middle, lower_middle, low"))
            })?,
        };
        let lat = c
            .lat
            .map(|x| check(i, "lat", Some(x), 0.0, Range::Closed(-90.0, 90.0)))
            .transpose()?;
        let lon = c
            .lon
            .map(|x| check(i, "lon", Some(x), 0.0, Range::Closed(-180.0, 180.0)))
            .transpose()?;
        if lat.is_some() != lon.is_some() {
            return Err(row_err(
                i,
                if lat.is_some() { "lon" } else { "lat" },
                "give both lat and lon, or neither".into(),
            ));
        }
        let specialization = match &c.specialization {
            None => None,
            Some(map) => {
                let mut v = vec![0.0; sectors.len()];
                for (name, &share) in map {
                    let s = sectors
                        .iter()
                        .position(|s| s.name == *name)
                        .ok_or_else(|| {
                            row_err(
                                i,
                                &format!("specialization.{name}"),
                                format!(
                                    "unknown sector `{name}`; sectors: {}",
                                    sector_names(sectors)
                                ),
                            )
                        })?;
                    v[s] = check(
                        i,
                        &format!("specialization.{name}"),
                        Some(share),
                        0.0,
                        Range::NON_NEGATIVE,
                    )?;
                }
                let total: f64 = v.iter().sum();
                if total <= 0.0 {
                    return Err(row_err(
                        i,
                        "specialization",
                        "the shares must not all be 0".into(),
                    ));
                }
                v.iter_mut().for_each(|x| *x /= total);
                Some(v)
            }
        };
        out.push(Country {
            code: c.code.clone(),
            name: c.name.clone().unwrap_or_else(|| c.code.clone()),
            bloc,
            income,
            gdp: check(i, "gdp", c.gdp, 1.0, Range::POSITIVE)?,
            rd: check(i, "rd", c.rd, 1.0, Range::NON_NEGATIVE)?,
            absorptive: check(i, "absorptive", c.absorptive, 1.0, Range::UNIT)?,
            openness: check(i, "openness", c.openness, 0.5, Range::UNIT)?,
            lat,
            lon,
            log_productivity: check(
                i,
                "log_productivity",
                c.log_productivity,
                0.0,
                Range::Closed(-1e6, 1e6),
            )?,
            retaliation_threshold: f64::NAN, // filled in build_trust's caller below
            specialization,
        });
    }
    if out.iter().all(|c| c.rd == 0.0)
        && raw
            .innovation
            .as_ref()
            .and_then(|i| i.per_step)
            .unwrap_or(200.0)
            > 0.0
    {
        return Err(InputError::new(
            &origin,
            "every country has rd = 0, so no country can innovate; give some country rd > 0 or set innovation.per_step = 0",
        ));
    }
    // Births are proportional to gdp x rd (MODEL.md section 2), normalised
    // by their sum over countries, so only their ratios matter; the sum
    // must be a number. (GDPs that add up beyond a number are named by the
    // caller's check.)
    if out.iter().map(|c| c.gdp).sum::<f64>().is_finite()
        && !out.iter().map(|c| c.gdp * c.rd).sum::<f64>().is_finite()
    {
        let msg = "gdp x rd, summed over countries for the arrival rates, overflows a number; give GDP or R&D in another unit (only their ratios matter)";
        return Err(match out.iter().position(|c| !(c.gdp * c.rd).is_finite()) {
            Some(i) => row_err(
                i,
                "rd",
                format!(
                    "{msg}: {:.3e} x {:.3e} for `{}`",
                    out[i].gdp, out[i].rd, out[i].code
                ),
            ),
            None => InputError::new(&origin, msg),
        });
    }

    // Retaliation thresholds: the country's own, else the scenario's.
    let default_theta = ctx.num(
        "trust.retaliation_threshold",
        raw.trust.as_ref().and_then(|t| t.retaliation_threshold),
        0.3,
        Range::NON_NEGATIVE,
    )?;
    for (i, c) in countries.iter().enumerate() {
        out[i].retaliation_threshold = check(
            i,
            "retaliation_threshold",
            c.retaliation_threshold,
            default_theta,
            Range::NON_NEGATIVE,
        )?;
    }

    // Size check before anything of size countries^2 is allocated.
    let n = out.len();
    let state_bytes = 16.0 * n as f64 * expected_innovations;
    if state_bytes > MAX_STATE_BYTES {
        return Err(ctx.error(
            "innovation.per_step",
            format!(
                "the run is too large: {n} countries x about {expected_innovations:.0} innovations needs about {:.1} GiB of state (at most {:.0} GiB); lower innovation.per_step, steps or the number of countries",
                state_bytes / (1u64 << 30) as f64,
                MAX_STATE_BYTES / (1u64 << 30) as f64
            ),
        ));
    }
    let weights = build_network(raw.network.as_ref(), &mut out, seed, ctx, files)?;
    let contact_share = network::contact_share(&weights);
    Ok(World {
        countries: out,
        blocs,
        weights,
        contact_share,
    })
}

/// The country codes, for "unknown code" messages (the first few in a large world).
fn country_codes(world: &World) -> String {
    const SHOWN: usize = 12;
    let codes: Vec<&str> = world
        .countries
        .iter()
        .take(SHOWN)
        .map(|c| c.code.as_str())
        .collect();
    let n = world.len();
    if n > SHOWN {
        format!("{}, ... ({n} in all)", codes.join(", "))
    } else {
        codes.join(", ")
    }
}

fn sector_names(sectors: &[Sector]) -> String {
    sectors
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Draws one value of a synthetic country field.
type Sampler = Box<dyn FnMut(&mut rand_chacha::ChaCha8Rng) -> f64>;

fn draw(
    dist: Option<&DistributionFile>,
    key: &str,
    default: f64,
    range: Range,
    ctx: &Context,
) -> Result<Sampler, InputError> {
    let Some(d) = dist else {
        return Ok(Box::new(move |_| default));
    };
    let need = |v: Option<f64>, name: &str| -> Result<f64, InputError> {
        let k = format!("{key}.{name}");
        let x = v.ok_or_else(|| {
            ctx.error(
                &k,
                format!("distribution `{}` needs `{name}`", d.distribution),
            )
        })?;
        if !x.is_finite() {
            return Err(ctx.error(&k, format!("must be finite, got {x}")));
        }
        Ok(x)
    };
    let takes: &[&str] = match d.distribution.as_str() {
        "constant" => &["value"],
        "uniform" => &["min", "max"],
        "lognormal" => &["mu", "sigma"],
        "beta" => &["alpha", "beta"],
        _ => &[],
    };
    let given = [
        ("value", d.value.is_some()),
        ("min", d.min.is_some()),
        ("max", d.max.is_some()),
        ("mu", d.mu.is_some()),
        ("sigma", d.sigma.is_some()),
        ("alpha", d.alpha.is_some()),
        ("beta", d.beta.is_some()),
    ];
    if !takes.is_empty()
        && let Some((extra, _)) = given.iter().find(|(k, g)| *g && !takes.contains(k))
    {
        return Err(ctx.error(
            &format!("{key}.{extra}"),
            format!(
                "does not apply to distribution `{}`, which takes {}",
                d.distribution,
                takes.join(", ")
            ),
        ));
    }
    let f: Sampler = match d.distribution.as_str() {
        "constant" => {
            let v = need(d.value, "value")?;
            if !range.contains(v) {
                return Err(ctx.error(
                    &format!("{key}.value"),
                    format!("must be {}, got {v}", range.describe()),
                ));
            }
            Box::new(move |_| v)
        }
        "uniform" => {
            let (lo, hi) = (need(d.min, "min")?, need(d.max, "max")?);
            if lo > hi || !range.contains(lo) || !range.contains(hi) {
                return Err(ctx.error(
                    &format!("{key}.min"),
                    format!(
                        "need min <= max, both {}; got [{lo}, {hi}]",
                        range.describe()
                    ),
                ));
            }
            Box::new(move |r| lo + (hi - lo) * rng::uniform(r))
        }
        "lognormal" => {
            let (mu, sigma) = (need(d.mu, "mu")?, need(d.sigma, "sigma")?);
            if sigma < 0.0 {
                return Err(ctx.error(
                    &format!("{key}.sigma"),
                    format!("must be >= 0, got {sigma}"),
                ));
            }
            let clamp = range;
            Box::new(move |r| {
                let x = crate::dist::lognormal(r, mu, sigma);
                match clamp {
                    Range::Closed(a, b) => x.clamp(a, b),
                    _ => x.max(f64::MIN_POSITIVE),
                }
            })
        }
        "beta" => {
            let (a, b) = (need(d.alpha, "alpha")?, need(d.beta, "beta")?);
            if a <= 0.0 || b <= 0.0 {
                return Err(ctx.error(
                    &format!("{key}.{}", if a <= 0.0 { "alpha" } else { "beta" }),
                    format!("alpha and beta must be > 0, got {a} and {b}"),
                ));
            }
            let clamp = range;
            Box::new(move |r| {
                let x = crate::dist::beta(r, a, b);
                match clamp {
                    Range::Closed(..) => x,
                    _ => x.max(f64::MIN_POSITIVE),
                }
            })
        }
        other => {
            return Err(ctx.error(
                &format!("{key}.distribution"),
                format!(
                    "unknown distribution `{other}`; allowed: constant, uniform, lognormal, beta"
                ),
            ));
        }
    };
    Ok(f)
}

/// Seeded synthetic countries: blocs by share (largest remainder), income
/// groups by GDP rank (richest first), fields from their distributions.
fn synthetic_countries(
    s: &SyntheticFile,
    seed: u64,
    ctx: &Context,
) -> Result<Vec<CountryFile>, InputError> {
    let n = s.count;
    if n < 1 || n as usize > MAX_COUNTRIES {
        return Err(ctx.error(
            "world.synthetic.count",
            format!("must be an integer from 1 to {MAX_COUNTRIES}, got {n}"),
        ));
    }
    let n = n as usize;
    let shares = |map: &Option<BTreeMap<String, f64>>,
                  key: &str,
                  allowed: Option<&[&str]>|
     -> Result<Vec<(String, usize)>, InputError> {
        let Some(map) = map else {
            return Ok(Vec::new());
        };
        let mut total = 0.0;
        for (label, &x) in map {
            let k = format!("{key}.{label}");
            if let Some(allowed) = allowed {
                if !allowed.contains(&label.as_str()) {
                    return Err(ctx.error(
                        &k,
                        format!("unknown label `{label}`; allowed: {}", allowed.join(", ")),
                    ));
                }
            } else if !valid_name(label) {
                return Err(ctx.error(&k, "a bloc label uses letters, digits, `_` or `-`"));
            }
            ctx.check(&k, x, Range::NON_NEGATIVE)?;
            total += x;
        }
        if total <= 0.0 {
            return Err(ctx.error(key, "the shares must not all be 0"));
        }
        Ok(largest_remainder(map, total, n))
    };
    let blocs = shares(&s.blocs, "world.synthetic.blocs", None)?;
    let incomes = shares(
        &s.income,
        "world.synthetic.income",
        Some(&["high", "upper_middle", "lower_middle", "low"]),
    )?;
    let mut gdp = draw(
        s.gdp.as_ref(),
        "world.synthetic.gdp",
        1.0,
        Range::POSITIVE,
        ctx,
    )?;
    let mut rd = draw(
        s.rd.as_ref(),
        "world.synthetic.rd",
        1.0,
        Range::NON_NEGATIVE,
        ctx,
    )?;
    let mut ab = draw(
        s.absorptive.as_ref(),
        "world.synthetic.absorptive",
        1.0,
        Range::UNIT,
        ctx,
    )?;
    let mut op = draw(
        s.openness.as_ref(),
        "world.synthetic.openness",
        0.5,
        Range::UNIT,
        ctx,
    )?;
    // One stream per field, so changing one field's distribution leaves the
    // others' draws as they were.
    let field_stream = |slot: u32| rng::stream(seed, 0, Purpose::World, 0, 10 + slot);
    let (mut r_gdp, mut r_rd, mut r_ab, mut r_op) = (
        field_stream(0),
        field_stream(1),
        field_stream(2),
        field_stream(3),
    );
    let width = libm::log10(n.max(2) as f64).floor() as usize + 1;
    let mut out: Vec<CountryFile> = (0..n)
        .map(|i| CountryFile {
            code: format!("C{:0width$}", i + 1),
            name: None,
            bloc: None,
            income: None,
            gdp: Some(gdp(&mut r_gdp)),
            rd: Some(rd(&mut r_rd)),
            absorptive: Some(ab(&mut r_ab)),
            openness: Some(op(&mut r_op)),
            lat: None,
            lon: None,
            log_productivity: None,
            retaliation_threshold: None,
            specialization: None,
        })
        .collect();
    let mut i = 0;
    for (label, count) in &blocs {
        for c in &mut out[i..i + count] {
            c.bloc = Some(label.clone());
        }
        i += count;
    }
    if !incomes.is_empty() {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| out[b].gdp.partial_cmp(&out[a].gdp).unwrap().then(a.cmp(&b)));
        let rank = ["high", "upper_middle", "lower_middle", "low"];
        let mut pos = 0;
        for label in rank {
            if let Some((_, count)) = incomes.iter().find(|(l, _)| l == label) {
                for &c in &order[pos..pos + count] {
                    out[c].income = Some(label.to_string());
                }
                pos += count;
            }
        }
    }
    Ok(out)
}

/// Split n items by shares so that counts sum to n (largest remainder).
fn largest_remainder(map: &BTreeMap<String, f64>, total: f64, n: usize) -> Vec<(String, usize)> {
    let mut parts: Vec<(String, usize, f64)> = map
        .iter()
        .map(|(k, &x)| {
            let exact = x / total * n as f64;
            (k.clone(), exact.floor() as usize, exact - exact.floor())
        })
        .collect();
    let mut left = n - parts.iter().map(|p| p.1).sum::<usize>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.partial_cmp(&parts[a].2).unwrap().then(a.cmp(&b)));
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    parts.into_iter().map(|(k, c, _)| (k, c)).collect()
}

const NETWORK_KINDS: &str = "gravity, edges, complete, erdos_renyi, barabasi_albert, small_world";

fn build_network(
    raw: Option<&NetworkFile>,
    countries: &mut [Country],
    seed: u64,
    ctx: &Context,
    files: &FileSource,
) -> Result<Array2<f64>, InputError> {
    let empty = NetworkFile {
        kind: None,
        normalize: None,
        source_exponent: None,
        target_exponent: None,
        distance_exponent: None,
        distance_offset_km: None,
        file: None,
        symmetric: None,
        p: None,
        m: None,
        k: None,
        rewire: None,
    };
    let net = raw.unwrap_or(&empty);
    let n = countries.len();
    let kind = net.kind.as_deref().unwrap_or("gravity");
    // Keys that belong to one kind only.
    let owned: [(&str, bool, &str); 10] = [
        ("source_exponent", net.source_exponent.is_some(), "gravity"),
        ("target_exponent", net.target_exponent.is_some(), "gravity"),
        (
            "distance_exponent",
            net.distance_exponent.is_some(),
            "gravity",
        ),
        (
            "distance_offset_km",
            net.distance_offset_km.is_some(),
            "gravity",
        ),
        ("file", net.file.is_some(), "edges"),
        ("symmetric", net.symmetric.is_some(), "edges"),
        ("p", net.p.is_some(), "erdos_renyi"),
        ("m", net.m.is_some(), "barabasi_albert"),
        ("k", net.k.is_some(), "small_world"),
        ("rewire", net.rewire.is_some(), "small_world"),
    ];
    for (key, given, for_kind) in owned {
        if given && kind != for_kind {
            return Err(ctx.error(
                &format!("network.{key}"),
                format!(
                    "applies only to network.kind = \"{for_kind}\" (this network is \"{kind}\")"
                ),
            ));
        }
    }
    let mut graph_rng = rng::stream(seed, 0, Purpose::World, 0, 1);
    let mut w = match kind {
        "gravity" => {
            let p = GravityParams {
                source_exponent: ctx.num(
                    "network.source_exponent",
                    net.source_exponent,
                    1.0,
                    Range::Closed(-10.0, 10.0),
                )?,
                target_exponent: ctx.num(
                    "network.target_exponent",
                    net.target_exponent,
                    1.0,
                    Range::Closed(-10.0, 10.0),
                )?,
                distance_exponent: ctx.num(
                    "network.distance_exponent",
                    net.distance_exponent,
                    1.0,
                    Range::Closed(0.0, 10.0),
                )?,
                distance_offset_km: ctx.num(
                    "network.distance_offset_km",
                    net.distance_offset_km,
                    500.0,
                    Range::POSITIVE,
                )?,
            };
            let mut pos_rng = rng::stream(seed, 0, Purpose::World, 0, 2);
            let positions: Vec<(f64, f64)> = countries
                .iter()
                .map(|c| {
                    // Draw for every country so positions do not depend on which lack coordinates.
                    let synthetic = network::random_position(&mut pos_rng);
                    match (c.lat, c.lon) {
                        (Some(a), Some(b)) => (a, b),
                        _ => synthetic,
                    }
                })
                .collect();
            let gdp: Vec<f64> = countries.iter().map(|c| c.gdp).collect();
            let w = network::gravity(&gdp, &positions, p);
            // Every pair's weight is a positive number in exact arithmetic;
            // one that overflows, or underflows to 0, would silently cut or
            // swamp that link.
            if let Some(((j, i), x)) = w
                .indexed_iter()
                .find(|&((j, i), &x)| j != i && !(x.is_finite() && x > 0.0))
            {
                return Err(ctx.error(
                    "network.kind",
                    format!(
                        "the gravity weight of {} -> {} comes out as {x}: gdp^source_exponent x gdp^target_exponent / (distance + distance_offset_km)^distance_exponent overflows or underflows a number; give GDP in another unit (any unit works) or smaller exponents",
                        countries[j].code, countries[i].code
                    ),
                ));
            }
            w
        }
        "edges" => {
            let rel = net.file.as_ref().ok_or_else(|| ctx.error("network.file", "network.kind = \"edges\" needs `file`, a CSV with columns source,target,weight"))?;
            let (shown, text) = files
                .read(rel, "network.file", &ctx.file)
                .map_err(|e| ctx.error("network.file", e.message))?;
            let edges = read_edges(&shown, &text, countries)?;
            network::from_edges(n, &edges, net.symmetric.unwrap_or(false))
        }
        "complete" => network::complete(n),
        "erdos_renyi" => {
            let p = net.p.ok_or_else(|| {
                ctx.error(
                    "network.p",
                    "network.kind = \"erdos_renyi\" needs `p`, the edge probability in [0, 1]",
                )
            })?;
            let p = ctx.check("network.p", p, Range::UNIT)?;
            network::erdos_renyi(n, p, &mut graph_rng)
        }
        "barabasi_albert" => {
            let m = net.m.ok_or_else(|| {
                ctx.error(
                    "network.m",
                    "network.kind = \"barabasi_albert\" needs `m`, the links of each new node",
                )
            })?;
            if m < 1 || m as usize >= n.max(2) {
                return Err(ctx.error(
                    "network.m",
                    format!(
                        "must be an integer from 1 to {} (fewer than the {n} countries), got {m}",
                        n.max(2) - 1
                    ),
                ));
            }
            network::barabasi_albert(n, m as usize, &mut graph_rng)
        }
        "small_world" => {
            let k = net.k.ok_or_else(|| {
                ctx.error(
                    "network.k",
                    "network.kind = \"small_world\" needs `k`, the even number of ring neighbours",
                )
            })?;
            if k < 2 || k % 2 != 0 || k as usize >= n {
                return Err(ctx.error("network.k", format!("must be an even integer >= 2 and below the number of countries ({n}), got {k}")));
            }
            let rewire = ctx.num("network.rewire", net.rewire, 0.1, Range::UNIT)?;
            network::small_world(n, k as usize, rewire, &mut graph_rng)
        }
        other => {
            return Err(ctx.error(
                "network.kind",
                format!("unknown network kind `{other}`; allowed: {NETWORK_KINDS}"),
            ));
        }
    };
    match net.normalize.as_deref().unwrap_or("recipient") {
        "recipient" => network::normalize_by_recipient(&mut w),
        "none" => {}
        other => {
            return Err(ctx.error(
                "network.normalize",
                format!("unknown normalisation `{other}`; allowed: recipient, none"),
            ));
        }
    }
    Ok(w)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeRow {
    source: String,
    target: String,
    weight: f64,
}

fn read_edges(
    shown: &str,
    text: &str,
    countries: &[Country],
) -> Result<Vec<(usize, usize, f64)>, InputError> {
    let index: HashMap<&str, usize> = countries
        .iter()
        .enumerate()
        .map(|(i, c)| (c.code.as_str(), i))
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (row, rec) in reader.deserialize::<EdgeRow>().enumerate() {
        let line = row + 2;
        let e = rec.map_err(|e| {
            InputError::new(
                shown,
                format!(
                    "bad row (columns must be source,target,weight): {}",
                    csv_message(&e)
                ),
            )
            .at(Some((line, 1)))
        })?;
        let find = |code: &str, col: &str| {
            index.get(code).copied().ok_or_else(|| {
                InputError::new(
                    shown,
                    format!("column `{col}`: unknown country code `{code}`"),
                )
                .at(Some((line, 1)))
            })
        };
        let (j, i) = (find(&e.source, "source")?, find(&e.target, "target")?);
        if !e.weight.is_finite() || e.weight < 0.0 {
            return Err(InputError::new(
                shown,
                format!(
                    "column `weight`: must be a finite number >= 0, got {}",
                    e.weight
                ),
            )
            .at(Some((line, 1))));
        }
        out.push((j, i, e.weight));
    }
    Ok(out)
}

/// Most log productivity the initial innovations may add up to (see
/// [`build_initial`]).
const MAX_INITIAL_GAIN: f64 = 1e100;

fn build_initial(
    raw: &[InitialFile],
    world: &World,
    sectors: &[Sector],
    ctx: &Context,
) -> Result<Vec<InitialInnovation>, InputError> {
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let k = |f: &str| format!("innovation.initial[{i}].{f}");
        let sector = sectors
            .iter()
            .position(|s| s.name == r.sector)
            .ok_or_else(|| {
                ctx.error(
                    &k("sector"),
                    format!(
                        "unknown sector `{}`; sectors: {}",
                        r.sector,
                        sector_names(sectors)
                    ),
                )
            })?;
        if r.holders.is_empty() {
            return Err(ctx.error(
                &k("holders"),
                "must list at least one country code (the first is the origin)",
            ));
        }
        let mut holders = Vec::new();
        for (h, code) in r.holders.iter().enumerate() {
            let c = world.index_of(code).ok_or_else(|| {
                ctx.error(
                    &format!("innovation.initial[{i}].holders[{h}]"),
                    format!(
                        "unknown country code `{code}`; countries: {}",
                        country_codes(world)
                    ),
                )
            })?;
            if holders.contains(&c) {
                return Err(ctx.error(
                    &format!("innovation.initial[{i}].holders[{h}]"),
                    format!("`{code}` is listed twice"),
                ));
            }
            holders.push(c);
        }
        let quality = match r.quality {
            Some(q) => ctx.check(&k("quality"), q, Range::POSITIVE)?,
            None => {
                return Err(ctx.error(
                    &k("quality"),
                    "is required: the quality step q_k > 0 of the initial innovation",
                ));
            }
        };
        let count = ctx.int(&k("count"), r.count, 1, 1, 1_000_000)? as usize;
        out.push(InitialInnovation {
            sector,
            holders,
            quality,
            count,
        });
    }
    // Log productivity adds omega_s * q_k per innovation held, and the
    // outputs sum it over countries and replications: far below where
    // those sums would overflow (then productivity, frontier gaps and costs
    // came out inf or NaN), far above any realistic log productivity.
    let gain: f64 = out
        .iter()
        .map(|x| sectors[x.sector].weight * x.quality * x.count as f64)
        .sum();
    if !gain.is_finite() || gain > MAX_INITIAL_GAIN {
        return Err(ctx.error(
            "innovation.initial",
            format!(
                "the initial innovations' log-productivity gains (sector weight x quality x count) add up to {gain:e}; at most {MAX_INITIAL_GAIN:e} is allowed: give smaller qualities or sector weights"
            ),
        ));
    }
    Ok(out)
}

fn build_trust(
    raw: Option<&TrustFile>,
    world: &World,
    ctx: &Context,
) -> Result<TrustParams, InputError> {
    let g = |f: fn(&TrustFile) -> Option<f64>| raw.and_then(f);
    let same = ctx.num("trust.same_bloc", g(|t| t.same_bloc), 0.9, Range::UNIT)?;
    let cross = ctx.num("trust.cross_bloc", g(|t| t.cross_bloc), 0.6, Range::UNIT)?;
    let n = world.len();
    let c = &world.countries;
    let mut initial = Array2::from_shape_fn((n, n), |(i, j)| {
        if i == j {
            1.0
        } else if c[i].bloc == c[j].bloc {
            same
        } else {
            cross
        }
    });
    if let Some(t) = raw {
        for (p, pair) in t.pair.iter().enumerate() {
            let k = |f: &str| format!("trust.pair[{p}].{f}");
            let i = world.index_of(&pair.truster).ok_or_else(|| {
                ctx.error(
                    &k("truster"),
                    format!(
                        "unknown country code `{}`; countries: {}",
                        pair.truster,
                        country_codes(world)
                    ),
                )
            })?;
            let j = world.index_of(&pair.trusted).ok_or_else(|| {
                ctx.error(
                    &k("trusted"),
                    format!(
                        "unknown country code `{}`; countries: {}",
                        pair.trusted,
                        country_codes(world)
                    ),
                )
            })?;
            if i == j {
                return Err(ctx.error(
                    &k("trusted"),
                    "a country's trust in itself is not a parameter; name two different countries",
                ));
            }
            let v = ctx.check(&k("initial"), pair.initial, Range::UNIT)?;
            initial[[i, j]] = v;
            if pair.symmetric.unwrap_or(false) {
                initial[[j, i]] = v;
            }
        }
    }
    Ok(TrustParams {
        recovery: ctx.num("trust.recovery", g(|t| t.recovery), 0.1, Range::UNIT)?,
        erosion: ctx.num("trust.erosion", g(|t| t.erosion), 0.3, Range::NON_NEGATIVE)?,
        perception_noise: ctx.num(
            "trust.perception_noise",
            g(|t| t.perception_noise),
            0.2,
            Range::Closed(0.0, 10.0),
        )?,
        retaliation: raw.and_then(|t| t.retaliation).unwrap_or(false),
        min_trust: ctx.num("trust.min_trust", g(|t| t.min_trust), 0.3, Range::UNIT)?,
        reciprocity: ctx.num(
            "trust.reciprocity",
            g(|t| t.reciprocity),
            1.0,
            Range::NON_NEGATIVE,
        )?,
        initial,
    })
}

fn build_cooperation(
    raw: Option<&CooperationFile>,
    sectors: &[Sector],
    ctx: &Context,
) -> Result<Cooperation, InputError> {
    let g = |f: fn(&CooperationFile) -> Option<f64>| raw.and_then(f);
    let mut positive_list = vec![false; sectors.len()];
    if let Some(list) = raw.and_then(|c| c.positive_list.as_ref()) {
        for (i, name) in list.iter().enumerate() {
            let key = format!("policy.cooperation.positive_list[{i}]");
            let s = sectors
                .iter()
                .position(|s| s.name == *name)
                .ok_or_else(|| {
                    ctx.error(
                        &key,
                        format!(
                            "unknown sector `{name}`; sectors: {}",
                            sector_names(sectors)
                        ),
                    )
                })?;
            if positive_list[s] {
                return Err(ctx.error(&key, format!("sector `{name}` is listed twice")));
            }
            positive_list[s] = true;
        }
    }
    Ok(Cooperation {
        positive_list,
        incentive: ctx.num(
            "policy.cooperation.incentive",
            g(|c| c.incentive),
            0.0,
            Range::Closed(0.0, 100.0),
        )?,
        prohibited_threshold: ctx.num(
            "policy.cooperation.prohibited_threshold",
            g(|c| c.prohibited_threshold),
            0.0,
            Range::UNIT,
        )?,
        transparency: ctx.num(
            "policy.cooperation.transparency",
            g(|c| c.transparency),
            0.0,
            Range::UNIT,
        )?,
        chilling: ctx.num(
            "policy.cooperation.chilling",
            g(|c| c.chilling),
            0.3,
            Range::UNIT,
        )?,
    })
}

/// Resolve selectors (`all`, a code, `bloc:X`, `income:X`) to a country mask.
fn select(
    list: &[String],
    key: &str,
    world: &World,
    ctx: &Context,
) -> Result<Vec<bool>, InputError> {
    let n = world.len();
    let mut mask = vec![false; n];
    for (i, sel) in list.iter().enumerate() {
        let k = format!("{key}[{i}]");
        if sel == "all" {
            mask.iter_mut().for_each(|m| *m = true);
        } else if let Some(b) = sel.strip_prefix("bloc:") {
            let bloc = world.blocs.iter().position(|x| x == b).ok_or_else(|| {
                ctx.error(
                    &k,
                    format!(
                        "no country is in bloc `{b}`; blocs: {}",
                        world.blocs.join(", ")
                    ),
                )
            })?;
            for (m, c) in mask.iter_mut().zip(&world.countries) {
                *m |= c.bloc == bloc;
            }
        } else if let Some(g) = sel.strip_prefix("income:") {
            let inc = Income::parse(g).ok_or_else(|| {
                ctx.error(
                    &k,
                    format!(
                        "unknown income group `{g}`; allowed: high, upper_middle, lower_middle, low"
                    ),
                )
            })?;
            for (m, c) in mask.iter_mut().zip(&world.countries) {
                *m |= c.income == inc;
            }
        } else {
            let c = world.index_of(sel).ok_or_else(|| {
                ctx.error(
                    &k,
                    format!(
                        "`{sel}` is not a country code, `all`, `bloc:X` or `income:X`; countries: {}",
                        country_codes(world)
                    ),
                )
            })?;
            mask[c] = true;
        }
    }
    Ok(mask)
}

fn build_regime(
    idx: usize,
    r: &ExportControlFile,
    world: &World,
    sectors: &[Sector],
    ctx: &Context,
) -> Result<ExportControl, InputError> {
    let k = |f: &str| format!("policy.export_control[{idx}].{f}");
    let name = r
        .name
        .clone()
        .unwrap_or_else(|| format!("regime_{}", idx + 1));
    if !valid_name(&name) {
        return Err(ctx.error(
            &k("name"),
            "must be a non-empty name of letters, digits, `_` or `-`",
        ));
    }
    if r.controllers.is_empty() {
        return Err(ctx.error(
            &k("controllers"),
            "a regime needs at least one controller (country code, `bloc:X`, `income:X` or `all`)",
        ));
    }
    let controllers = select(&r.controllers, &k("controllers"), world, ctx)?;
    if !controllers.iter().any(|&c| c) {
        return Err(ctx.error(&k("controllers"), "selects no country"));
    }
    let selected = select(
        r.targets.as_deref().unwrap_or(&["all".to_string()]),
        &k("targets"),
        world,
        ctx,
    )?;
    let except = select(&r.except, &k("except"), world, ctx)?;
    let targets: Vec<bool> = (0..world.len())
        .map(|i| selected[i] && !except[i] && !controllers[i])
        .collect();
    if r.sectors.is_empty() {
        return Err(ctx.error(
            &k("sectors"),
            "a regime needs at least one sector: sectors = { name = scope }",
        ));
    }
    let mut sec = Vec::new();
    for (name, &scope) in &r.sectors {
        let key = format!("{}.{name}", k("sectors"));
        let s = sectors
            .iter()
            .position(|s| s.name == *name)
            .ok_or_else(|| {
                ctx.error(
                    &key,
                    format!(
                        "unknown sector `{name}`; sectors: {}",
                        sector_names(sectors)
                    ),
                )
            })?;
        sec.push((s, ctx.check(&key, scope, Range::UNIT)?));
    }
    sec.sort_by_key(|p| p.0);
    let start = ctx.int(&k("start"), r.start, 0, 0, MAX_STEPS)? as u32;
    let end = match r.end {
        None => None,
        Some(e) => {
            if e < i64::from(start) {
                return Err(ctx.error(
                    &k("end"),
                    format!("must not be before start ({start}), got {e}"),
                ));
            }
            Some(e.min(i64::from(u32::MAX)) as u32)
        }
    };
    let mut schedule = Vec::new();
    if let Some(s) = &r.schedule {
        if s.is_empty() {
            return Err(ctx.error(
                &k("schedule"),
                "give at least one [step, multiplier] pair, or leave the key out",
            ));
        }
        for (p, &(t, m)) in s.iter().enumerate() {
            let key = format!("{}[{p}]", k("schedule"));
            ctx.check(&key, t, Range::NON_NEGATIVE)?;
            ctx.check(&key, m, Range::NON_NEGATIVE)?;
            if let Some(&(prev, _)) = schedule.last()
                && t <= prev
            {
                return Err(ctx.error(
                    &key,
                    format!("schedule steps must increase strictly; {t} follows {prev}"),
                ));
            }
            schedule.push((t, m));
        }
    }
    Ok(ExportControl {
        name,
        controllers,
        targets,
        sectors: sec,
        licence_rate: ctx.num(&k("licence_rate"), r.licence_rate, 0.0, Range::UNIT)?,
        cost: ctx.num(&k("cost"), r.cost, 0.0, Range::NON_NEGATIVE)?,
        start,
        end,
        extraterritorial: r.extraterritorial.unwrap_or(false),
        schedule,
    })
}
