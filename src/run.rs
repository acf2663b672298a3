//! Running a scenario: every (replication, variant) pair as one job of a
//! rayon iterator, results gathered in a fixed order so that they do not
//! depend on the thread count or on which job finishes first.

use rayon::prelude::*;

use crate::model::Scenario;
use crate::sim::metrics::Layout;
use crate::sim::{CountryOutcome, StepRecord, Variant, run_variant};

/// Everything one (replication, variant) run produced.
#[derive(Debug, Clone)]
pub struct VariantRun {
    pub replication: u32,
    pub variant: Variant,
    /// Step 0 to the last step.
    pub series: Vec<StepRecord>,
    pub countries: Vec<CountryOutcome>,
}

/// The results of a whole scenario run.
#[derive(Debug, Clone)]
pub struct RunResults {
    pub layout: Layout,
    pub replications: u32,
    /// Policy runs by replication, then counterfactual runs by replication.
    pub runs: Vec<VariantRun>,
}

impl RunResults {
    pub fn get(&self, variant: Variant, replication: u32) -> &VariantRun {
        let base = match variant {
            Variant::Policy => 0,
            Variant::Counterfactual => self.replications as usize,
        };
        &self.runs[base + replication as usize]
    }
}

/// Run `replications` paired replications. `on_step` is called (from worker
/// threads) once per simulated step, for progress display.
pub fn run_scenario(sc: &Scenario, replications: u32, on_step: &(dyn Fn() + Sync)) -> RunResults {
    let layout = Layout::new(sc);
    let jobs: Vec<(Variant, u32)> = [Variant::Policy, Variant::Counterfactual]
        .into_iter()
        .flat_map(|v| (0..replications).map(move |r| (v, r)))
        .collect();
    let runs = jobs
        .par_iter()
        .map(|&(variant, replication)| {
            let mut series = Vec::with_capacity(sc.steps as usize + 1);
            let countries = run_variant(sc, &layout, replication, variant, |rec| {
                series.push(rec);
                on_step();
            });
            VariantRun {
                replication,
                variant,
                series,
                countries,
            }
        })
        .collect();
    RunResults {
        layout,
        replications,
        runs,
    }
}

/// What a sweep keeps of one variant of one replication: the last step, the
/// per-country outcomes and, per series, the sum over steps (for totals such
/// as retaliations opened). Time series are not kept.
#[derive(Debug, Clone)]
pub struct VariantFinal {
    pub last: StepRecord,
    pub totals: Vec<f64>,
    pub countries: Vec<CountryOutcome>,
}

/// Run one variant of one replication keeping only its final figures.
pub fn run_final(
    sc: &Scenario,
    layout: &Layout,
    replication: u32,
    variant: Variant,
) -> VariantFinal {
    let mut last = None;
    let mut totals = vec![0.0; layout.series.len()];
    let countries = run_variant(sc, layout, replication, variant, |rec| {
        for (t, v) in totals.iter_mut().zip(&rec.values) {
            if !v.is_nan() {
                *t += v;
            }
        }
        last = Some(rec);
    });
    VariantFinal {
        last: last.expect("step 0 is always recorded"),
        totals,
        countries,
    }
}

/// Work done by one paired run, for throughput figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkCounts {
    /// Steps simulated (both variants).
    pub steps: u64,
    /// Adoptions by diffusion (both variants).
    pub adoptions: u64,
    /// Sum over steps of countries x innovations in existence (both variants).
    pub country_innovation_steps: u64,
    /// Innovations in existence at the end (both variants).
    pub innovations: u64,
}

/// Run one replication's policy and counterfactual variants side by side
/// (two rayon tasks) and count the work done.
pub fn run_pair_counts(sc: &Scenario, layout: &Layout, replication: u32) -> WorkCounts {
    let one = |variant: Variant| {
        let mut sim = crate::sim::Simulation::new(sc, layout, replication, variant);
        let n = sc.world.len() as u64;
        let mut counts = WorkCounts::default();
        for _ in 0..sc.steps {
            sim.step();
            counts.steps += 1;
            counts.country_innovation_steps += n * sim.innovation_count() as u64;
        }
        counts.adoptions = sim.adoptions();
        counts.innovations = sim.innovation_count() as u64;
        counts
    };
    let (a, b) = rayon::join(|| one(Variant::Policy), || one(Variant::Counterfactual));
    WorkCounts {
        steps: a.steps + b.steps,
        adoptions: a.adoptions + b.adoptions,
        country_innovation_steps: a.country_innovation_steps + b.country_innovation_steps,
        innovations: a.innovations + b.innovations,
    }
}
