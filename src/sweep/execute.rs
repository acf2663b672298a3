//! Running a sweep: every (point, replication) run through one rayon
//! iterator; each finished run is appended to a journal (`runs.jsonl`) and
//! flushed, so an interrupted sweep loses nothing finished and `--resume`
//! runs only what is missing. Shards run a deterministic 1/N of the runs;
//! `merge` unions their journals. The final files are made from the journal
//! alone, in (point, replication) order, so they are byte-identical whatever
//! the thread count, the completion order, the interruptions or the sharding.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::{Design, MetricKind, Reference, Sweep, display_value, sensitivity};
use crate::error::{Error, InputError};
use crate::output::{pretty, write_atomic};
use crate::run::{VariantFinal, run_final};
use crate::scenario::keys::{KeyPath, Segment};
use crate::sim::Variant;
use crate::sim::metrics::{GroupKind, Layout};
use crate::stats::Estimate;

pub const JOURNAL: &str = "runs.jsonl";
pub const MANIFEST: &str = "manifest.json";

/// One finished run as the journal records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub point: usize,
    pub replication: u32,
    /// Kept metrics of the policy variant (None = undefined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Vec<Option<f64>>>,
    /// The same metrics in the counterfactual variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterfactual: Option<Vec<Option<f64>>>,
    /// Why the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunRecord {
    /// Whether this record can be a run of `sweep`: its point and
    /// replication exist, and it has the shape `run_one` writes (a value
    /// per metric in both variants and no error, or an error and no
    /// values). A record from a hand-edited or another sweep's journal
    /// is no run of this one.
    fn fits(&self, sweep: &Sweep) -> bool {
        let n = sweep.metrics.len();
        self.point < sweep.points.len()
            && self.replication < sweep.replications
            && match (&self.policy, &self.counterfactual, &self.error) {
                (Some(p), Some(c), None) => p.len() == n && c.len() == n,
                (None, None, Some(_)) => true,
                _ => false,
            }
    }
}

/// Which runs this invocation does: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `K/N` (as `--shard` takes it and a shard's manifest keeps it); the
    /// error says what is allowed.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || "must be K/N, shard K of N, with 1 <= K <= N".to_string();
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    fn owns(&self, run: usize) -> bool {
        run % self.count == self.index - 1
    }
}

/// How a sweep invocation went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ran: usize,
    pub failed_total: usize,
    pub finished: bool,
    pub dir: PathBuf,
}

/// Whether the counterfactual variant never reads the scenario key at
/// `path`: the regimes (`policy.export_control...`), the chilling factor,
/// transparency and prohibited zone (they act only through regimes,
/// chilling and perception), and the trust dynamics and retaliation (the
/// counterfactual holds trust at T0 and decides nothing). MODEL.md section
/// 7: the counterfactual is the same world with no regime, no chilling
/// and trust held at T0. Everything else (the world, sectors, innovation,
/// diffusion, T0 itself, the positive list and its incentive, which boost
/// both variants) may change it. Unknown or whole-table paths count as
/// read.
fn counterfactual_ignores(path: &KeyPath) -> bool {
    let keys: Vec<&str> = path
        .segments
        .iter()
        .map(|s| match s {
            Segment::Key(k) => k.as_str(),
            Segment::Index(_) | Segment::Name(_) => "[]",
        })
        .collect();
    match keys.as_slice() {
        ["policy", "export_control", ..] => true,
        ["policy", "cooperation", key] => {
            matches!(*key, "transparency" | "chilling" | "prohibited_threshold")
        }
        ["trust", key] => matches!(
            *key,
            "recovery"
                | "erosion"
                | "perception_noise"
                | "retaliation"
                | "retaliation_threshold"
                | "min_trust"
                | "reciprocity"
        ),
        _ => false,
    }
}

/// The counterfactual form of each design point: points whose values
/// agree on every parameter the counterfactual may read share one (so,
/// replication by replication, they share the counterfactual run itself:
/// the same scenario as far as that variant reads it, the same seed and
/// streams). Returns the form of each point and the number of forms.
fn counterfactual_forms(sweep: &Sweep) -> (Vec<usize>, usize) {
    let read: Vec<bool> = sweep
        .params
        .iter()
        .map(|p| !counterfactual_ignores(&p.path))
        .collect();
    let mut forms: std::collections::HashMap<Vec<String>, usize> = Default::default();
    let of_point = sweep
        .points
        .iter()
        .map(|pt| {
            // Debug text: exact for every value (floats in their shortest
            // round-trip form, -0.0 apart from 0.0).
            let key: Vec<String> = pt
                .values
                .iter()
                .zip(&read)
                .filter(|(_, r)| **r)
                .map(|(v, _)| format!("{v:?}"))
                .collect();
            let next = forms.len();
            *forms.entry(key).or_insert(next)
        })
        .collect();
    (of_point, forms.len())
}

/// A counterfactual run's final figures, or why it could not be had.
type SharedCounterfactual = Result<VariantFinal, String>;

/// The counterfactual of replication `replication` shared by `points`
/// (one counterfactual form): run on the first of them whose scenario
/// loads. None when none loads (each run then records its own loading
/// error).
fn shared_counterfactual(
    sweep: &Sweep,
    points: &[usize],
    replication: u32,
) -> Option<SharedCounterfactual> {
    let loaded = points.iter().find_map(|&p| sweep.scenario_at(p).ok())?;
    let sc = &loaded.scenario;
    let run = catch_unwind(AssertUnwindSafe(|| {
        run_final(sc, &Layout::new(sc), replication, Variant::Counterfactual)
    }));
    Some(run.map_err(|panic| internal_error(&*panic)))
}

fn internal_error(panic: &(dyn std::any::Any + Send)) -> String {
    format!(
        "internal error: {}",
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    )
}

/// One run's kept metrics, (policy, counterfactual), each None where
/// undefined.
type RunMetrics = (Vec<Option<f64>>, Vec<Option<f64>>);

/// Compute the kept metrics of one run: (policy, counterfactual), the
/// counterfactual's figures given (`cf`, shared by the points of its
/// counterfactual form).
fn run_metrics(
    sweep: &Sweep,
    point: usize,
    replication: u32,
    cf: &VariantFinal,
) -> Result<RunMetrics, String> {
    let loaded = sweep.scenario_at(point).map_err(|e| e.to_string())?;
    let sc = &loaded.scenario;
    let layout = Layout::new(sc);
    let policy = run_final(sc, &layout, replication, Variant::Policy);
    let mut p_out = Vec::with_capacity(sweep.metrics.len());
    let mut c_out = Vec::with_capacity(sweep.metrics.len());
    for m in &sweep.metrics {
        let group = layout
            .groups
            .iter()
            .find(|g| g.name == m.group)
            .ok_or_else(|| format!("group `{}` does not exist at this point", m.group))?;
        let value = |v: &VariantFinal| -> Result<Option<f64>, String> {
            let x = match &m.kind {
                MetricKind::SecuritizationCost { .. } => unreachable!("handled below"),
                MetricKind::Final { series } => {
                    v.last.values[layout
                        .find(&m.group, series)
                        .ok_or_else(|| format!("no series {series}@{}", m.group))?]
                }
                MetricKind::Total { series } => {
                    v.totals[layout
                        .find(&m.group, series)
                        .ok_or_else(|| format!("no series {series}@{}", m.group))?]
                }
            };
            Ok((!x.is_nan()).then_some(x))
        };
        match &m.kind {
            MetricKind::SecuritizationCost { gdp_weighted } => {
                let GroupKind::Countries(members) = &group.kind else {
                    return Err(format!("`{}` is not a country group", m.group));
                };
                if members.is_empty() {
                    p_out.push(None);
                    c_out.push(None);
                    continue;
                }
                let w = |i: usize| {
                    if *gdp_weighted {
                        sc.world.countries[i].gdp
                    } else {
                        1.0
                    }
                };
                let wsum: f64 = members.iter().map(|&i| w(i)).sum();
                let cost = 100.0
                    * members
                        .iter()
                        .map(|&i| {
                            w(i) * (cf.countries[i].log_productivity
                                - policy.countries[i].log_productivity)
                        })
                        .sum::<f64>()
                    / wsum;
                p_out.push(Some(cost));
                c_out.push(Some(0.0));
            }
            _ => {
                p_out.push(value(&policy)?);
                c_out.push(value(cf)?);
            }
        }
    }
    Ok((p_out, c_out))
}

fn run_one(
    sweep: &Sweep,
    point: usize,
    replication: u32,
    cf: Option<&SharedCounterfactual>,
) -> RunRecord {
    let result = catch_unwind(AssertUnwindSafe(|| match cf {
        Some(Ok(cf)) => run_metrics(sweep, point, replication, cf),
        Some(Err(e)) => Err(e.clone()),
        // No point of the form loads: this one's loading error.
        None => Err(sweep
            .scenario_at(point)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "internal error: the scenario loaded on a second attempt".into())),
    }));
    let result = match result {
        Ok(r) => r,
        Err(panic) => Err(internal_error(&*panic)),
    };
    match result {
        Ok((p, c)) => RunRecord {
            point,
            replication,
            policy: Some(p),
            counterfactual: Some(c),
            error: None,
        },
        Err(e) => RunRecord {
            point,
            replication,
            policy: None,
            counterfactual: None,
            error: Some(e),
        },
    }
}

/// Read a journal, keeping complete lines; a torn last line (a kill during
/// a write) is dropped.
pub fn read_journal(path: &Path) -> Result<Vec<RunRecord>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::output(path, e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| Error::output(path, e))?;
        if let Ok(rec) = serde_json::from_slice::<RunRecord>(&line) {
            out.push(rec);
        }
    }
    Ok(out)
}

/// Read a sweep's journal: the records that fit the sweep. The others are
/// dropped like unparsable lines, so resume runs them again and merge
/// counts them missing.
fn read_sweep_journal(path: &Path, sweep: &Sweep) -> Result<Vec<RunRecord>, Error> {
    let mut records = read_journal(path)?;
    records.retain(|r| r.fits(sweep));
    Ok(records)
}

fn manifest_json(sweep: &Sweep, shard: Option<Shard>, extra: Json) -> Json {
    json!({
        "techdiff_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("TECHDIFF_GIT_REVISION"),
        "results_generation": crate::RESULTS_GENERATION,
        "sweep_name": sweep.name,
        "description": sweep.description,
        "sweep_file": sweep.file,
        // The folder of the sweep file as an absolute path, so that merge
        // finds the base scenario (relative to it) from any folder.
        "sweep_dir": sweep_dir(&sweep.file),
        "sweep_text": sweep.text,
        "scenario_file": sweep.scenario_file,
        "scenario_text": sweep.scenario_text,
        "table_text": sweep.table_text,
        "design": sweep.design.name(),
        "points": sweep.points.len(),
        "replications": sweep.replications,
        "runs": sweep.runs(),
        "seed": sweep.seed,
        "run_seeds": "every run uses the sweep seed with its replication index as the stream key (seed, replication): all points share the streams of a replication (common random numbers)",
        "counterfactuals": "run once per replication for the points that agree on every parameter the counterfactual may read (it never reads policy.export_control, policy.cooperation.transparency, chilling and prohibited_threshold, nor the trust dynamics and retaliation keys): the same figures as one counterfactual per run",
        "counterfactual_forms": counterfactual_forms(sweep).1,
        "shard": shard.map(|s| format!("{}/{}", s.index, s.count)),
        "metrics": sweep.metrics.iter().map(|m| m.label.clone()).collect::<Vec<_>>(),
        "run": extra,
    })
}

/// The folder of `file` as given (`.` for a bare file name).
fn file_dir(file: &str) -> PathBuf {
    Path::new(file)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The folder of `file` as an absolute path, if it can be found.
fn sweep_dir(file: &str) -> Option<String> {
    std::fs::canonicalize(file_dir(file))
        .ok()
        .map(|d| d.display().to_string())
}

/// Whether the file is a sweep's manifest.
fn sweep_manifest(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .is_some_and(|m| m.get("sweep_text").is_some())
}

/// Refuse a sweep manifest (`m`, read from the file `shown`) written by a
/// build of another results generation ([`crate::RESULTS_GENERATION`];
/// none recorded: generation 1). Its runs drew other numbers for the same
/// replication: mixed with this build's they would break the common random
/// numbers across points and the byte-for-byte reproducibility.
fn check_generation(m: &Json, shown: &str) -> Result<(), InputError> {
    let generation = m.get("results_generation").map_or(Some(1), Json::as_u64);
    if generation == Some(crate::RESULTS_GENERATION) {
        return Ok(());
    }
    Err(InputError::new(
        shown,
        format!(
            "key `results_generation`: this folder was run by a build of results generation {} (git revision {}), whose random draws differ from this build's (generation {}); resume or merge it only with a build of its generation, or run the sweep again into another --out",
            generation.map_or_else(|| m["results_generation"].to_string(), |g| g.to_string()),
            m["git_revision"].as_str().unwrap_or("unknown"),
            crate::RESULTS_GENERATION
        ),
    ))
}

/// Does `dir` hold a run of this very sweep (same files, same texts)?
fn check_same_sweep(dir: &Path, sweep: &Sweep) -> Result<Option<Shard>, InputError> {
    let path = dir.join(MANIFEST);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| InputError::new(&shown, format!("cannot read the sweep manifest: {e}")))?;
    let m: Json = serde_json::from_str(&text)
        .map_err(|e| InputError::new(&shown, format!("not a sweep manifest: {e}")))?;
    if m.get("sweep_text").is_none() {
        return Err(InputError::new(
            &shown,
            "not a sweep's manifest (a run's results, or another file): resume or merge only folders `techdiff sweep` wrote",
        ));
    }
    check_generation(&m, &shown)?;
    for (key, ours) in [
        ("sweep_text", &sweep.text),
        ("scenario_text", &sweep.scenario_text),
    ] {
        if m[key].as_str() != Some(ours.as_str()) {
            return Err(InputError::new(
                &shown,
                format!(
                    "this folder holds a different sweep (`{key}` differs): resume or merge only runs of the same sweep and scenario files"
                ),
            ));
        }
    }
    if m["table_text"].as_str() != sweep.table_text.as_deref() {
        return Err(InputError::new(
            &shown,
            "this folder holds a sweep with a different table file",
        ));
    }
    m["shard"]
        .as_str()
        .map(|s| {
            Shard::parse(s)
                .map_err(|e| InputError::new(&shown, format!("key `shard`: {e}, got `{s}`")))
        })
        .transpose()
}

/// Run a sweep (or one shard of it, or what a previous invocation left
/// missing) into `dir`, then, if every run is there, write the final files.
pub fn execute(
    sweep: &Sweep,
    dir: &Path,
    shard: Option<Shard>,
    resume: bool,
    on_run: &(dyn Fn() + Sync),
    on_start: &dyn Fn(usize),
) -> Result<Outcome, Error> {
    let journal_path = dir.join(JOURNAL);
    let mut done: Vec<RunRecord> = Vec::new();
    if resume {
        let prev_shard = check_same_sweep(dir, sweep)?;
        if prev_shard != shard {
            return Err(InputError::new(
                "command line",
                format!(
                    "the folder was run with --shard {}; resume it with the same --shard",
                    prev_shard
                        .map(|s| format!("{}/{}", s.index, s.count))
                        .unwrap_or_else(|| "(none)".into())
                ),
            )
            .into());
        }
        done = read_sweep_journal(&journal_path, sweep)?;
        // Rewrite the journal with the kept records only, so appends start
        // clean.
        write_atomic(&journal_path, &journal_bytes(&done))?;
    } else if dir.join(MANIFEST).exists() || journal_path.exists() {
        return Err(InputError::new(
            "command line",
            if dir.join(JOURNAL).exists() || sweep_manifest(&dir.join(MANIFEST)) {
                format!("{} already holds a sweep: pass `--resume {}` to finish it, or choose another --out", dir.display(), dir.display())
            } else {
                format!("{} already holds results (a manifest.json): choose another --out", dir.display())
            },
        )
        .into());
    }
    write_atomic(
        &dir.join(MANIFEST),
        &pretty(&manifest_json(sweep, shard, json!({"status": "running"}))),
    )?;

    let have: std::collections::HashSet<(usize, u32)> =
        done.iter().map(|r| (r.point, r.replication)).collect();
    let reps = sweep.replications as usize;
    let todo: Vec<(usize, u32)> = (0..sweep.runs())
        .filter(|&run| shard.is_none_or(|s| s.owns(run)))
        .map(|run| (run / reps, (run % reps) as u32))
        .filter(|key| !have.contains(key))
        .collect();
    on_start(todo.len());
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal_path)
        .map_err(|e| Error::output(&journal_path, e))?;
    let journal = Mutex::new(file);
    let write_error: Mutex<Option<Error>> = Mutex::new(None);
    let record = |rec: RunRecord| {
        let mut line = serde_json::to_vec(&rec).expect("serialisable");
        line.push(b'\n');
        let mut f = journal.lock().expect("journal lock");
        if let Err(e) = f.write_all(&line).and_then(|_| f.flush()) {
            write_error
                .lock()
                .expect("lock")
                .get_or_insert(Error::output(&journal_path, e));
        }
        drop(f);
        on_run();
    };
    // Runs to do by (replication, counterfactual form): each group runs
    // its counterfactual once, then its points' policy variants.
    let (form_of, _) = counterfactual_forms(sweep);
    let mut groups: BTreeMap<(u32, usize), Vec<usize>> = BTreeMap::new();
    for &(point, rep) in &todo {
        groups.entry((rep, form_of[point])).or_default().push(point);
    }
    groups.into_par_iter().for_each(|((rep, _), points)| {
        let cf = shared_counterfactual(sweep, &points, rep);
        points
            .par_iter()
            .for_each(|&point| record(run_one(sweep, point, rep, cf.as_ref())));
    });
    if let Some(e) = write_error.into_inner().expect("lock") {
        return Err(e);
    }
    let ran = todo.len();
    let all = read_sweep_journal(&journal_path, sweep)?;
    if shard.is_some() {
        let failed_total = all.iter().filter(|r| r.error.is_some()).count();
        write_atomic(
            &dir.join(MANIFEST),
            &pretty(&manifest_json(
                sweep,
                shard,
                json!({"status": "shard complete", "runs_in_shard": all.len(), "failed": failed_total}),
            )),
        )?;
        return Ok(Outcome {
            ran,
            failed_total,
            finished: false,
            dir: dir.to_path_buf(),
        });
    }
    let failed_total = finalize(sweep, dir, all)?;
    Ok(Outcome {
        ran,
        failed_total,
        finished: true,
        dir: dir.to_path_buf(),
    })
}

/// Combine shard folders of one sweep into `out`, writing the same files an
/// unsharded sweep writes. Everything is read and checked before `out` is
/// created or written.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<usize, Error> {
    let first = dirs
        .first()
        .ok_or_else(|| InputError::new("command line", "merge needs at least one folder"))?;
    // Never overwrite results: an input shard, another sweep, a run.
    let out_real = std::fs::canonicalize(out).ok();
    if out_real.is_some()
        && dirs
            .iter()
            .any(|d| std::fs::canonicalize(d).ok() == out_real)
    {
        return Err(InputError::new(
            "command line",
            format!(
                "--out {} is one of the folders being merged: choose another --out",
                out.display()
            ),
        )
        .into());
    }
    if let Some(file) = stopped_merge(out) {
        return Err(InputError::new(
            "command line",
            format!(
                "--out {} holds a merge that stopped part-way (its {MANIFEST} says \"merging\", and its {JOURNAL} has every run): finish it with `techdiff sweep {file} --resume {}`, or choose another --out",
                out.display(),
                out.display()
            ),
        )
        .into());
    }
    if out.join(MANIFEST).exists() || out.join(JOURNAL).exists() {
        return Err(InputError::new(
            "command line",
            format!(
                "--out {} already holds results (a {MANIFEST} or {JOURNAL}): choose another --out",
                out.display()
            ),
        )
        .into());
    }
    let manifest_path = first.join(MANIFEST);
    let shown = manifest_path.display().to_string();
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| InputError::new(&shown, format!("cannot read the sweep manifest: {e}")))?;
    let m: Json = serde_json::from_str(&text)
        .map_err(|e| InputError::new(&shown, format!("not a sweep manifest: {e}")))?;
    if m.get("sweep_text").is_none() {
        return Err(InputError::new(
            &shown,
            "not a sweep's manifest (a run's results, or another file): merge only folders `techdiff sweep --shard` wrote",
        )
        .into());
    }
    // Before its sweep file is read: an older build's may no longer parse.
    check_generation(&m, &shown)?;
    let sweep_file = m["sweep_file"].as_str().unwrap_or_default().to_string();
    // The sweep file's folder where the sweep ran (absolute), if it is
    // still there; else its path as given then, taken from here (shards
    // made elsewhere and copied).
    let dir = m["sweep_dir"]
        .as_str()
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && d.is_dir())
        .unwrap_or_else(|| file_dir(&sweep_file));
    let sweep = Sweep::from_text(
        m["sweep_text"].as_str().unwrap_or_default(),
        &sweep_file,
        &dir,
    )?;
    let mut records: BTreeMap<(usize, u32), RunRecord> = BTreeMap::new();
    for d in dirs {
        check_same_sweep(d, &sweep)?;
        for r in read_sweep_journal(&d.join(JOURNAL), &sweep)? {
            match records.get(&(r.point, r.replication)) {
                Some(prev) if *prev != r => {
                    return Err(InputError::new(
                        d.display().to_string(),
                        format!(
                            "run (point {}, replication {}) differs between shards",
                            r.point, r.replication
                        ),
                    )
                    .into());
                }
                _ => {
                    records.insert((r.point, r.replication), r);
                }
            }
        }
    }
    // Kept records fit the sweep and are one per run, so this cannot
    // underflow. Checked here, before `out` exists: finalize's own check
    // would name `out` and leave it half-made.
    let missing = sweep.runs() - records.len();
    if missing > 0 {
        let given: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(InputError::new(
            "command line",
            format!(
                "{missing} of {} runs are missing from {}: merge needs the folder of every shard of the sweep, each finished (resume an interrupted shard first)",
                sweep.runs(),
                given.join(", ")
            ),
        )
        .into());
    }
    let all: Vec<RunRecord> = records.into_values().collect();
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, e))?;
    write_atomic(
        &out.join(MANIFEST),
        &pretty(&manifest_json(
            &sweep,
            None,
            json!({"status": MERGING, "merged_from": dirs}),
        )),
    )?;
    write_atomic(&out.join(JOURNAL), &journal_bytes(&all))?;
    finalize(&sweep, out, all)
}

/// The manifest's status while a merge writes its final files.
const MERGING: &str = "merging";

/// The sweep file of the merge into `dir` that stopped after writing its
/// journal (a write error in [`finalize`]): its manifest still says
/// "merging". `techdiff sweep FILE --resume DIR` finishes it, running
/// nothing.
fn stopped_merge(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let m: Json = serde_json::from_str(&text).ok()?;
    if m["run"]["status"] != MERGING || !dir.join(JOURNAL).is_file() {
        return None;
    }
    Some(m["sweep_file"].as_str()?.to_string())
}

/// Journal lines for `records`.
fn journal_bytes(records: &[RunRecord]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in records {
        bytes.extend(serde_json::to_vec(r).expect("serialisable"));
        bytes.push(b'\n');
    }
    bytes
}

/// Leading columns of runs.csv and failures.csv.
fn run_header(sweep: &Sweep) -> Vec<String> {
    let mut header = vec!["point".to_string(), "replication".into(), "seed".into()];
    header.extend(sweep.params.iter().map(|p| p.name.clone()));
    header
}

fn run_prefix(sweep: &Sweep, point: usize, replication: u32) -> Vec<String> {
    let mut row = vec![
        point.to_string(),
        replication.to_string(),
        sweep.seed.to_string(),
    ];
    row.extend(sweep.points[point].values.iter().map(display_value));
    row
}

/// An index of sensitivity.csv. A zero effect can come out as -0 (no change
/// over a step taken downwards): written 0.
fn index_cell(x: f64) -> String {
    crate::output::number(x + 0.0)
}

fn cell(v: Option<f64>) -> String {
    v.map(crate::output::number).unwrap_or_default()
}

/// Write runs.csv, points.csv, failures.csv, sensitivity.csv (sobol,
/// morris) and the final manifest. Returns the number of failed runs.
fn finalize(sweep: &Sweep, dir: &Path, records: Vec<RunRecord>) -> Result<usize, Error> {
    // Only records that fit: then every key is a run of the sweep, every
    // row below has its full length and every metric index is in range.
    let mut by_key: BTreeMap<(usize, u32), RunRecord> = BTreeMap::new();
    for r in records.into_iter().filter(|r| r.fits(sweep)) {
        by_key.insert((r.point, r.replication), r);
    }
    let missing = sweep.runs() - by_key.len();
    if missing > 0 {
        return Err(InputError::new(
            dir.display().to_string(),
            format!(
                "{missing} of {} runs are missing: resume the sweep or merge every shard",
                sweep.runs()
            ),
        )
        .into());
    }
    let reps = sweep.replications;
    let m_count = sweep.metrics.len();
    let get = |p: usize, r: u32| &by_key[&(p, r)];

    // runs.csv
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = run_header(sweep);
    header.push("status".into());
    header.extend(sweep.metrics.iter().map(|m| m.label.clone()));
    w.write_record(&header).expect("memory");
    for ((p, r), rec) in &by_key {
        let mut row = run_prefix(sweep, *p, *r);
        row.push(if rec.error.is_some() {
            "failed".into()
        } else {
            "ok".into()
        });
        match &rec.policy {
            Some(v) => row.extend(v.iter().map(|x| cell(*x))),
            None => row.extend(std::iter::repeat_n(String::new(), m_count)),
        }
        w.write_record(&row).expect("memory");
    }
    write_atomic(&dir.join("runs.csv"), &w.into_inner().expect("memory"))?;

    // failures.csv
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = run_header(sweep);
    header.push("error".into());
    w.write_record(&header).expect("memory");
    let mut failed = 0;
    for ((p, r), rec) in &by_key {
        if let Some(e) = &rec.error {
            failed += 1;
            let mut row = run_prefix(sweep, *p, *r);
            row.push(e.clone());
            w.write_record(&row).expect("memory");
        }
    }
    write_atomic(&dir.join("failures.csv"), &w.into_inner().expect("memory"))?;

    // points.csv
    let metric_values = |p: usize, m: usize| -> Vec<f64> {
        (0..reps)
            .map(|r| {
                get(p, r)
                    .policy
                    .as_ref()
                    .and_then(|v| v[m])
                    .unwrap_or(f64::NAN)
            })
            .collect()
    };
    let diffs = |p: usize, m: usize| -> Vec<f64> {
        (0..reps)
            .map(|r| {
                let mine = get(p, r).policy.as_ref().and_then(|v| v[m]);
                let theirs = match sweep.reference {
                    Reference::Counterfactual => {
                        get(p, r).counterfactual.as_ref().and_then(|v| v[m])
                    }
                    Reference::Point(q) => get(q, r).policy.as_ref().and_then(|v| v[m]),
                };
                match (mine, theirs) {
                    (Some(a), Some(b)) => a - b,
                    _ => f64::NAN,
                }
            })
            .collect()
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["point".to_string()];
    header.extend(sweep.params.iter().map(|p| p.name.clone()));
    header.push("runs_ok".into());
    for m in &sweep.metrics {
        for suffix in [
            "mean",
            "sd",
            "ci95_low",
            "ci95_high",
            "diff_mean",
            "diff_ci95_low",
            "diff_ci95_high",
        ] {
            header.push(format!("{}:{suffix}", m.label));
        }
    }
    w.write_record(&header).expect("memory");
    let mut point_means = vec![vec![f64::NAN; sweep.points.len()]; m_count];
    for p in 0..sweep.points.len() {
        let mut row = vec![p.to_string()];
        row.extend(sweep.points[p].values.iter().map(display_value));
        row.push(
            (0..reps)
                .filter(|&r| get(p, r).error.is_none())
                .count()
                .to_string(),
        );
        for (m, means) in point_means.iter_mut().enumerate() {
            let e = Estimate::of(&metric_values(p, m));
            let d = Estimate::of(&diffs(p, m));
            means[p] = e.map_or(f64::NAN, |e| e.mean);
            row.push(cell(e.map(|e| e.mean)));
            row.push(cell(e.and_then(|e| e.sd)));
            row.push(cell(e.and_then(|e| e.ci95).map(|c| c.0)));
            row.push(cell(e.and_then(|e| e.ci95).map(|c| c.1)));
            row.push(cell(d.map(|e| e.mean)));
            row.push(cell(d.and_then(|e| e.ci95).map(|c| c.0)));
            row.push(cell(d.and_then(|e| e.ci95).map(|c| c.1)));
        }
        w.write_record(&row).expect("memory");
    }
    write_atomic(&dir.join("points.csv"), &w.into_inner().expect("memory"))?;

    // sensitivity.csv
    let mut notes = Vec::new();
    if matches!(sweep.design, Design::Sobol | Design::Morris) {
        let mut w = csv::Writer::from_writer(Vec::new());
        let d = sweep.params.len();
        if sweep.design == Design::Sobol {
            w.write_record([
                "metric",
                "parameter",
                "first_order",
                "first_order_ci95_low",
                "first_order_ci95_high",
                "total",
                "total_ci95_low",
                "total_ci95_high",
            ])
            .expect("memory");
        } else {
            w.write_record([
                "metric",
                "parameter",
                "mu",
                "mu_star",
                "sigma",
                "mu_star_ci95_low",
                "mu_star_ci95_high",
                "sigma_ci95_low",
                "sigma_ci95_high",
            ])
            .expect("memory");
        }
        for (m, y) in point_means.iter().enumerate() {
            let label = &sweep.metrics[m].label;
            if y.iter().any(|v| v.is_nan()) {
                notes.push(format!(
                    "{label}: no sensitivity indices, some design points have no successful run"
                ));
                continue;
            }
            let mut rng =
                crate::rng::stream(sweep.seed, 0, crate::rng::Purpose::Bootstrap, 0, m as u32);
            if sweep.design == Design::Sobol {
                let n = sweep.samples.expect("sobol has samples");
                for (j, s) in sensitivity::sobol_indices(y, n, d, sweep.bootstrap, &mut rng)
                    .iter()
                    .enumerate()
                {
                    w.write_record([
                        label.clone(),
                        sweep.params[j].name.clone(),
                        index_cell(s.first),
                        index_cell(s.first_ci.0),
                        index_cell(s.first_ci.1),
                        index_cell(s.total),
                        index_cell(s.total_ci.0),
                        index_cell(s.total_ci.1),
                    ])
                    .expect("memory");
                }
            } else {
                let r = sweep.samples.expect("morris has samples");
                let unit: Vec<Vec<f64>> = sweep
                    .points
                    .iter()
                    .map(|p| p.unit.clone().expect("morris points have unit coordinates"))
                    .collect();
                let intervals =
                    sensitivity::morris_intervals(&unit, y, r, d, sweep.bootstrap, &mut rng);
                for (j, (s, c)) in sensitivity::morris_indices(&unit, y, r, d)
                    .iter()
                    .zip(&intervals)
                    .enumerate()
                {
                    w.write_record([
                        label.clone(),
                        sweep.params[j].name.clone(),
                        index_cell(s.mu),
                        index_cell(s.mu_star),
                        index_cell(s.sigma),
                        index_cell(c.mu_star_ci.0),
                        index_cell(c.mu_star_ci.1),
                        index_cell(c.sigma_ci.0),
                        index_cell(c.sigma_ci.1),
                    ])
                    .expect("memory");
                }
            }
        }
        write_atomic(
            &dir.join("sensitivity.csv"),
            &w.into_inner().expect("memory"),
        )?;
    }
    write_atomic(
        &dir.join(MANIFEST),
        &pretty(&manifest_json(
            sweep,
            None,
            json!({"status": "complete", "failed": failed, "notes": notes}),
        )),
    )?;
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{FileSource, load_text};
    use crate::sim::run_variant;
    use crate::sim::tests::STRESS;

    /// The journal gives back every value bit for bit (so runs.csv is the
    /// same whether a sweep ran at once, was resumed, or merged; resume
    /// rewrites the journal from what it read): needs serde_json's exact
    /// float parsing (`float_roundtrip`), not its default fast one.
    #[test]
    fn journal_values_read_back_bit_for_bit() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut values: Vec<f64> = vec![0.0018787952595765462, -0.0, 1e-300, f64::MAX];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Finite values of every size: random bits with the exponent
            // kept in range.
            let v = f64::from_bits(x & !(0x7ffu64 << 52) | ((x >> 52) % 2046 + 1) << 52);
            values.push(v);
        }
        for chunk in values.chunks(100) {
            let rec = RunRecord {
                point: 0,
                replication: 0,
                policy: Some(chunk.iter().map(|&v| Some(v)).collect()),
                counterfactual: Some(vec![None; chunk.len()]),
                error: None,
            };
            let line = serde_json::to_vec(&rec).unwrap();
            let back: RunRecord = serde_json::from_slice(&line).unwrap();
            for (a, b) in chunk.iter().zip(back.policy.unwrap()) {
                assert_eq!(a.to_bits(), b.unwrap().to_bits(), "{a:e}");
            }
        }
    }

    /// Every step's series (bits) and the final per-country figures of one
    /// variant of the stress world (every policy mechanism on: schedules,
    /// regimes starting and ending, extraterritorial reach, chilling, a
    /// positive list, noisy perception, retaliation) with `over` set.
    fn trace(over: &[&str], variant: Variant) -> (Vec<Vec<u64>>, String) {
        let over: Vec<String> = over.iter().map(|s| s.to_string()).collect();
        let loaded = load_text(STRESS, "stress.toml", FileSource::Embedded, &over).unwrap();
        let sc = &loaded.scenario;
        let mut steps = Vec::new();
        let outcomes = run_variant(sc, &Layout::new(sc), 1, variant, |rec| {
            steps.push(rec.values.iter().map(|v| v.to_bits()).collect());
        });
        (steps, format!("{outcomes:?}"))
    }

    fn path(text: &str) -> KeyPath {
        KeyPath::parse(text).unwrap()
    }

    /// Each kind of key the counterfactual is said never to read, set to
    /// a value that changes the policy variant, leaves the counterfactual
    /// the same bits at every step; keys it reads (the positive list, its
    /// incentive, T0, the diffusion) change it and are not among them.
    #[test]
    fn the_counterfactual_reads_none_of_the_keys_it_ignores() {
        let ignored = [
            "policy.export_control[wide].licence_rate=0.9",
            "policy.export_control[0].sectors.chips=0.1",
            "policy.export_control[wide].cost=3",
            "policy.export_control[wide].start=6",
            "policy.cooperation.transparency=1",
            "policy.cooperation.chilling=0",
            "policy.cooperation.prohibited_threshold=0.95",
            "trust.recovery=0.05",
            "trust.erosion=0.1",
            "trust.perception_noise=0",
            "trust.retaliation=false",
            "trust.retaliation_threshold=0.6",
            "trust.min_trust=0.1",
            "trust.reciprocity=0.2",
        ];
        let base_cf = trace(&[], Variant::Counterfactual);
        let base_policy = trace(&[], Variant::Policy);
        for set in ignored {
            let (key, _) = set.split_once('=').unwrap();
            assert!(counterfactual_ignores(&path(key)), "{key}");
            assert!(
                trace(&[set], Variant::Policy) != base_policy,
                "{set} leaves the policy variant as it was: no test"
            );
            assert!(
                trace(&[set], Variant::Counterfactual) == base_cf,
                "{set} changes the counterfactual"
            );
        }
        let read = [
            "policy.cooperation.positive_list=[]",
            "policy.cooperation.incentive=0.9",
            "trust.cross_bloc=0.9",
            "diffusion.beta=0.3",
        ];
        for set in read {
            let (key, _) = set.split_once('=').unwrap();
            assert!(!counterfactual_ignores(&path(key)), "{key}");
            assert!(
                trace(&[set], Variant::Counterfactual) != base_cf,
                "{set} leaves the counterfactual as it was"
            );
        }
    }

    #[test]
    fn only_policy_keys_are_ignored() {
        for key in [
            "policy.export_control",
            "policy.export_control[2]",
            "policy.export_control[core].schedule",
            "trust.min_trust",
        ] {
            assert!(counterfactual_ignores(&path(key)), "{key}");
        }
        for key in [
            "policy",
            "policy.cooperation",
            "policy.cooperation.positive_list",
            "policy.cooperation.incentive",
            "trust",
            "trust.same_bloc",
            "trust.cross_bloc",
            "trust.pairs",
            "diffusion.trust_exponent",
            "world.synthetic.count",
            "seed",
        ] {
            assert!(!counterfactual_ignores(&path(key)), "{key}");
        }
    }

    /// Points that differ only in keys the counterfactual ignores share
    /// one form, points that differ in one it reads do not; and each run's
    /// figures with the counterfactual shared by its form are the same bits
    /// as with a counterfactual run from its own scenario.
    #[test]
    fn runs_sharing_a_counterfactual_have_the_figures_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("world.toml"), STRESS).unwrap();
        let text = r#"
            scenario = "world.toml"
            replications = 2
            design = "grid"
            metrics = ["securitization_cost@all", "log_productivity@all", "mean_trust@bloc:B", "adoption_share_total@all", "diffusion_lag@all"]
            [[param]]
            path = "policy.export_control[wide].licence_rate"
            values = [0.1, 0.7]
            [[param]]
            path = "policy.cooperation.incentive"
            values = [0.0, 0.5]
            [[param]]
            path = "trust.erosion"
            values = [0.2, 0.9]
        "#;
        let sweep = Sweep::from_text(text, "sweep.toml", dir.path()).unwrap();
        assert_eq!(sweep.points.len(), 8);
        let (form, forms) = counterfactual_forms(&sweep);
        assert_eq!(forms, 2);
        for (p, q) in (0..8).flat_map(|p| (0..8).map(move |q| (p, q))) {
            let same_incentive = sweep.points[p].values[1] == sweep.points[q].values[1];
            assert_eq!(form[p] == form[q], same_incentive, "points {p} and {q}");
        }
        for rep in 0..2 {
            for f in 0..forms {
                let points: Vec<usize> = (0..8).filter(|&p| form[p] == f).collect();
                let shared = shared_counterfactual(&sweep, &points, rep)
                    .unwrap()
                    .unwrap();
                for &p in &points {
                    let sc = sweep.scenario_at(p).unwrap().scenario;
                    let own: VariantFinal =
                        run_final(&sc, &Layout::new(&sc), rep, Variant::Counterfactual);
                    let a = run_metrics(&sweep, p, rep, &shared).unwrap();
                    let b = run_metrics(&sweep, p, rep, &own).unwrap();
                    let bits = |v: &(Vec<Option<f64>>, Vec<Option<f64>>)| -> Vec<Option<u64>> {
                        v.0.iter()
                            .chain(&v.1)
                            .map(|x| x.map(f64::to_bits))
                            .collect()
                    };
                    assert_eq!(bits(&a), bits(&b), "point {p}, replication {rep}");
                }
            }
        }
    }
}
