//! The simulation core: one replication of one variant (policy or paired
//! counterfactual), stepped synchronously (MODEL.md section 0). No I/O, no
//! printing; randomness only from the keyed streams of [`crate::rng`].
//!
//! Diffusion is exact and incremental (see ARCHITECTURE.md): every
//! (recipient, innovation) pair has an Exp(1) threshold drawn at the
//! innovation's birth; each step the pair's cumulative hazard grows by
//! beta * a_i * E_ik + nu_s * a_i and the pair adopts when it crosses the
//! threshold, which gives exactly P_ik = 1 - exp(-hazard) per step. Exposure
//! E_ik (stored in fixed point, `rows::Fixed`, so that an incremental sum
//! is the same bits as a fresh one) is kept up to date incrementally: a new
//! holder adds its row of its class's terms once (kept in fixed point as a
//! base per sector plus each class's covered pairs, and patched where
//! weights moved: see `layers`); a pair whose
//! weight moved (trust, chilling) adds the difference to the innovations
//! it carries; an innovation whose gate class changed (scope schedules,
//! regimes starting or ending) is recomputed from its holders.
//!
//! Births (MODEL.md section 2) are drawn in `births`, the agents'
//! perception, trust and retaliation (section 4) decided in `trust`, and
//! the rows' exposures and adoptions advanced in `diffuse`, with the
//! gate classes' terms from `classes`; this module keeps the state,
//! prepares what each phase reads (policy view, gate classes, moved
//! pairs) and sequences the phases within a step.

mod births;
mod classes;
mod diffuse;
mod layers;
pub mod metrics;
pub mod policy;
mod rows;
mod trust;

use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;

use fixedbitset::FixedBitSet;
use ndarray::Array2;
use rayon::prelude::*;

use crate::model::{ExportControl, Scenario};
use crate::rng::{self, Purpose};
use births::{Arrivals, Birth, PartnerCache, arrival_intensities};
use classes::{ClassTerms, Classes, CoverKey, Twin, class_rows, patch_terms, whole_changes};
use diffuse::{AheadTerms, Corrections, DiffuseInputs, Moved, Scratch, Terms, compact_changes};
use layers::{Cover, Family, Layer};
use metrics::{GroupKind, Layout, Metric};
use policy::{KeptRestrictiveness, KeyDesc, KeyInterner, PolicyView};
use rows::{Factor, Gates, Links, Row};
use trust::{Retaliation, trust_step};

/// Which of the paired runs this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// The scenario as written.
    Policy,
    /// Same world and streams, every regime removed, chilling and retaliation
    /// off, trust held at T0.
    Counterfactual,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Policy => "policy",
            Variant::Counterfactual => "counterfactual",
        }
    }
}

/// The metrics of one step, in [`Layout`] order (NaN = undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub step: u32,
    pub values: Vec<f64>,
}

/// Final figures of one country.
#[derive(Debug, Clone, PartialEq)]
pub struct CountryOutcome {
    pub log_productivity: f64,
    pub growth: f64,
    pub frontier_gap: f64,
    /// NaN when the country originated or co-invented nothing.
    pub coinvention_share: f64,
    pub adoption_share: f64,
    pub retaliations_opened: u32,
}

use rows::NONE;

/// Steps of an epoch of thinning, at most (see [`Simulation::run_ahead`]):
/// longer epochs move the bound weights, and so every exposure at their
/// pairs, less often, but hold them further above the exact ones, which
/// makes more candidates to reject. medium_policy.toml: 16 measured
/// against 8 in results/BENCHMARKS.md (forty-fourth and forty-fifth
/// rounds).
const THIN_EPOCH: u32 = 16;

/// A trust update run ahead (see [`Simulation::run_ahead`]): the view it
/// ran under (the step's own, taken by its classes), the state it leaves,
/// and the retaliations it decides, for its step.
struct QueuedTrust {
    step: u32,
    view: Option<PolicyView>,
    trust: Array2<f64>,
    unsettled: Vec<bool>,
    touched: Vec<bool>,
    decided: Vec<Retaliation>,
}

/// A block of thinned steps (see [`Simulation::thin_block`]): its first
/// and last steps, per sector the control draws whose gate class may move
/// within it (the union of its later steps' scope changes), and for each
/// later step (`start + 1 + index`) the exact weights and their slack
/// against the epoch's bound weights (None where none is below).
struct ThinBlock {
    start: u32,
    last: u32,
    moved: Vec<Vec<(f64, f64)>>,
    ahead: Vec<(Vec<f64>, Option<diffuse::Slack>)>,
}

impl ThinBlock {
    /// Whether step t is one of the block's.
    fn holds(&self, t: u32) -> bool {
        (self.start..=self.last).contains(&t)
    }

    /// Whether step t is one of the block's after its first, whose rows
    /// were (mostly) advanced at the first.
    fn later(&self, t: u32) -> bool {
        self.start < t && t <= self.last
    }

    /// Whether an innovation of sector `s` with control draw `u` keeps its
    /// gate class through the block (its draw lies in no moved interval).
    fn keeps(&self, s: u32, u: f64) -> bool {
        !self.moved[s as usize]
            .iter()
            .any(|&(lo, hi)| lo <= u && u < hi)
    }
}

/// A slot where two classes' gates may differ (see
/// `Simulation::gate_diff`): the slot, its source and target, and the
/// gate of the counter-regime that the one class adds there, where it
/// adds nothing else.
type GateDiff = (usize, u32, u32, Option<f64>);

/// Rows one diffusion task takes at a time.
const ROWS_PER_TASK: usize = 64;

/// Steps a block advances each row at once (see
/// [`Simulation::lookahead`]).
const LOOKAHEAD: u32 = 8;

/// Innovations, structure of arrays, indexed by birth order.
#[derive(Debug, Default, Clone)]
struct Innovations {
    sector: Vec<u32>,
    origin: Vec<u32>,
    coinventor: Vec<u32>,
    birth: Vec<u32>,
    /// omega_s * q_k: what holding it adds to log productivity.
    value: Vec<f64>,
    /// The control draw u_k.
    u: Vec<f64>,
    holder_count: Vec<u32>,
    /// Holders, a bitset over countries per innovation.
    holders: Vec<FixedBitSet>,
}

impl Innovations {
    fn len(&self) -> usize {
        self.sector.len()
    }
}

/// Innovations under control by sector (MODEL.md section 7: u_k below
/// the largest effective scope of its sector), counted as of the view's
/// largest scopes `scope` over innovations `0..upto`: kept from step to
/// step while those scopes stay, so each step counts only its births.
#[derive(Debug, Default, Clone)]
struct Controlled {
    scope: Vec<f64>,
    upto: usize,
    by_sector: Vec<u64>,
}

/// Running tallies of adoptions for the lag and cross-bloc outputs, by
/// [`WITHIN`] and [`CROSS`] bloc (indexed, not branched on: which one an
/// adoption is follows no pattern).
#[derive(Debug, Default, Clone, Copy)]
struct AdoptionTally {
    count: [u64; 2],
    lag: [u64; 2],
}

/// [`AdoptionTally`]'s slots: the adopter's bloc is the origin's, or not.
const WITHIN: usize = 0;
const CROSS: usize = 1;

impl AdoptionTally {
    fn count(&self) -> u64 {
        self.count[WITHIN] + self.count[CROSS]
    }

    fn lag(&self) -> u64 {
        self.lag[WITHIN] + self.lag[CROSS]
    }
}

/// One replication of one variant.
pub struct Simulation<'a> {
    sc: &'a Scenario,
    layout: &'a Layout,
    variant: Variant,
    replication: u32,
    n: usize,
    step: u32,
    lambda: f64,
    q0: f64,
    /// 2^F, the fixed-point scale of exposures (see [`rows::fixed_scale`]).
    scale: f64,
    inn: Innovations,
    held_count: Vec<u64>,
    /// Per sector, the (country, innovation) pairs where the country holds
    /// an innovation of the sector.
    held_in_sector: Vec<u64>,
    sector_count: Vec<u64>,
    /// Innovations under control by sector (see [`Controlled`]).
    controlled: Controlled,
    /// Per innovation, its non-holders' exposures and residuals.
    rows: Vec<Row>,
    /// Bloc of each country (a compact copy: the adoption bookkeeping
    /// reads it for every adoption).
    bloc: Vec<u32>,
    /// Per country i, the countries j != i with a positive contact share
    /// w~_ij (co-invention partners), ascending.
    partners: Vec<Vec<u32>>,
    links: Arc<Links>,
    log_prod: Vec<f64>,
    log_prod_prev: Vec<f64>,
    log_prod0: Vec<f64>,
    frontier: f64,
    /// T[[i, j]], i's trust in j.
    trust: Array2<f64>,
    /// Per country i: some T_ij differs from T0_ij. A row that does not,
    /// and perceives no restriction, is left as it is by the trust update
    /// (T0 + rho * 0 - delta * 0 is T0, bit for bit).
    unsettled: Vec<bool>,
    /// Rows of trust the last trust update went through (the others are
    /// as they were, so their weights need no second look).
    trust_touched: Vec<bool>,
    /// Per perceiving country i, R_ji by j as last computed (empty until
    /// i first perceives a restriction): see [`KeptRestrictiveness`].
    kept_r: Vec<Vec<KeptRestrictiveness>>,
    regimes: Vec<ExportControl>,
    /// Per regime: its controllers and its targets, ascending.
    members: Vec<(Vec<u32>, Vec<u32>)>,
    /// retaliating[i * n + j]: the counter-regime i holds against j.
    retaliating: Vec<u32>,
    view: PolicyView,
    interner: KeyInterner,
    key_prev: Vec<u32>,
    /// Last step's live innovations per class ([`class_rows`]).
    rows_prev: Vec<usize>,
    /// Per sector and bucket of control draws, the gate classes met
    /// ([`Self::assign_keys`]); a sector's are dropped when its covering
    /// regimes move.
    key_buckets: Vec<Vec<Option<KeyBucket>>>,
    /// Gate factors per class id, built when a class is first used: they
    /// depend on neither trust nor the chilled pairs.
    gates: Vec<Option<Arc<Gates>>>,
    /// Whether each slot of [`Links`] is chilled, last step.
    chilled_prev: Vec<bool>,
    /// Class terms as of the last step, brought to the current step by
    /// [`ClassTerms::bring`]: bases shared by the classes of a boost and
    /// chilling factor, and per class in use its covered slots.
    families: Vec<Family>,
    layers: Vec<Option<Layer>>,
    /// Covers by covering regimes (a class's `cover` and `ext`), with the
    /// last step a class in use had each (see [`Cover`]).
    covers: FxHashMap<CoverKey, (Arc<Cover>, u32)>,
    /// a_ji = w_ji * T_ij^mu of the previous step, at the slots of [`Links`].
    a_prev: Vec<f64>,
    /// The trust each slot of `a_prev` was computed from.
    trust_used: Vec<f64>,
    /// Thinning (policy variant, dense networks; see
    /// [`Simulation::run_ahead`]): epochs of at most `thin_w` steps (1:
    /// no thinning), the last step of the current one, the trust updates
    /// run ahead for its steps, and the trust its bound weights (then in
    /// `a_prev`) read. `a_exact` holds the step's exact weights, from the
    /// trust in `exact_used`.
    thin_w: u32,
    epoch_until: u32,
    trust_queue: VecDeque<QueuedTrust>,
    /// The block of thinned steps in progress, if any.
    thin_block: Option<ThinBlock>,
    thin_bound: Array2<f64>,
    a_exact: Vec<f64>,
    exact_used: Vec<f64>,
    /// Tests only: added to the bound trust (at most 1), so that most
    /// candidates of thinning face a real chance of rejection.
    thin_loosen: f64,
    /// Tests only: thinning keeps every candidate (a wrong distribution).
    thin_keep_all: bool,
    /// Adoptions of the previous step: (innovation, adopter), by innovation.
    events: Vec<(u32, u32)>,
    /// Innovation k's entries in `events` are
    /// `event_start[k]..event_start[k + 1]` (counted during the
    /// bookkeeping, which walks them anyway).
    event_start: Vec<u32>,
    /// Innovations with index >= this were born in the previous step.
    new_from: usize,
    /// Steps each row is advanced at once at most (1: one step at a time).
    /// In the counterfactual (no regime, no chilling, trust held) the class
    /// terms never move, so a row's exposures change only when it gains
    /// holders, and a row is advanced through several steps while it sits
    /// in cache (the same operations in the same order: the same bits).
    /// The policy variant does so on sparse networks while only trust
    /// moves, through terms planned ahead ([`Self::plan_block`]). Births
    /// still wait for each step's adopters.
    lookahead: u32,
    /// Adopters of this step and the next ones (through `ahead_until`),
    /// found ahead of time: per step, the diffusion tasks' lists in order,
    /// each by innovation then adopter (joined when the step comes).
    ahead: VecDeque<Vec<Vec<(u32, u32)>>>,
    ahead_until: u32,
    /// The policy variant's rows from this index on were born after the
    /// current block began (see [`Self::plan_block`]).
    block_first: usize,
    coinv_num: Vec<u64>,
    coinv_den: Vec<u64>,
    tally: Vec<AdoptionTally>,
    sector_lag: Vec<(u64, u64)>,
    opened_now: Vec<u32>,
    opened_total: Vec<u32>,
    /// Each country's co-invention partner weights, kept while they stay
    /// valid (see [`PartnerCache`]).
    partner_cache: Vec<PartnerCache>,
    /// Per sector, incremented whenever the policy view changes in what
    /// the sector's co-invention partner weights read: the restricted
    /// pairs (which regimes are active) or a regime's scope in the sector.
    sector_epoch: Vec<u64>,
    /// Check every exposure against a direct evaluation of MODEL.md section 5
    /// after each diffusion phase, and kept partner weights at every use
    /// (slow; for tests).
    verify_exposure: bool,
    /// How moved-pair corrections are made (tests force each way).
    corrections: Corrections,
    /// Columns of the compact matrices by country (true) or by moved
    /// recipient (false) whatever their share; None: as [`diffuse::FULL_WIDTH`]
    /// decides (tests force each).
    full_width: Option<bool>,
    /// Use the portable build of the diffusion kernels even where a faster
    /// one runs, or the AVX2 one where AVX-512 runs (for tests).
    portable_only: bool,
    avx2_only: bool,
}

/// The innovations of one sector whose control draws fall in one bucket
/// (see [`PolicyView::cover`]): covered by the same regimes, so in the same
/// gate class but for the extraterritorial regimes their origin controls.
struct KeyBucket {
    /// The covering regimes.
    cover: Vec<u32>,
    /// The extraterritorial covering regimes (empty: the class is the same
    /// for every origin).
    ext: Vec<u32>,
    /// Per origin (one slot when `ext` is empty): the class, NONE until met.
    by_origin: Vec<u32>,
    /// Classes by the subset of `ext` the origin controls.
    classes: Vec<(Vec<u32>, u32)>,
}

impl<'a> Simulation<'a> {
    pub fn new(sc: &'a Scenario, layout: &'a Layout, replication: u32, variant: Variant) -> Self {
        let n = sc.world.len();
        let s_count = sc.sectors.len();
        let countries = &sc.world.countries;
        let log_prod0: Vec<f64> = countries.iter().map(|c| c.log_productivity).collect();
        let frontier0 = log_prod0.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let regimes = match variant {
            Variant::Policy => sc.regimes.clone(),
            Variant::Counterfactual => Vec::new(),
        };
        let mut sim = Simulation {
            sc,
            layout,
            variant,
            replication,
            n,
            step: 0,
            lambda: 0.0,
            q0: 0.0,
            scale: exposure_scale(sc),
            inn: Innovations::default(),
            held_count: vec![0; n],
            held_in_sector: vec![0; s_count],
            sector_count: vec![0; s_count],
            controlled: Controlled::default(),
            rows: Vec::new(),
            bloc: sc.world.countries.iter().map(|c| c.bloc as u32).collect(),
            partners: (0..n)
                .map(|i| {
                    (0..n)
                        .filter(|&j| j != i && sc.world.contact_share[[i, j]] != 0.0)
                        .map(|j| j as u32)
                        .collect()
                })
                .collect(),
            links: Arc::new(Links::new(&sc.world.weights)),
            log_prod: log_prod0.clone(),
            log_prod_prev: log_prod0.clone(),
            log_prod0,
            frontier: frontier0,
            trust: sc.trust.initial.as_standard_layout().into_owned(),
            unsettled: vec![false; n],
            trust_touched: vec![false; n],
            kept_r: vec![Vec::new(); n],
            regimes,
            members: Vec::new(),
            retaliating: vec![NONE; n * n],
            view: PolicyView::empty(n, s_count),
            interner: KeyInterner::default(),
            key_prev: Vec::new(),
            rows_prev: Vec::new(),
            key_buckets: Vec::new(),
            gates: Vec::new(),
            chilled_prev: Vec::new(),
            families: Vec::new(),
            layers: Vec::new(),
            covers: FxHashMap::default(),
            a_prev: Vec::new(),
            trust_used: Vec::new(),
            thin_w: THIN_EPOCH,
            epoch_until: 0,
            trust_queue: VecDeque::new(),
            thin_block: None,
            thin_bound: Array2::zeros((0, 0)),
            a_exact: Vec::new(),
            exact_used: Vec::new(),
            thin_loosen: 0.0,
            thin_keep_all: false,
            events: Vec::new(),
            event_start: Vec::new(),
            new_from: 0,
            coinv_num: vec![0; n],
            coinv_den: vec![0; n],
            tally: vec![AdoptionTally::default(); n],
            sector_lag: vec![(0, 0); s_count],
            opened_now: vec![0; n],
            opened_total: vec![0; n],
            partner_cache: vec![PartnerCache::default(); n],
            sector_epoch: vec![0; sc.sectors.len()],
            verify_exposure: false,
            lookahead: LOOKAHEAD,
            ahead: VecDeque::new(),
            ahead_until: 0,
            block_first: 0,
            corrections: Corrections::Chosen,
            full_width: None,
            portable_only: false,
            avx2_only: false,
        };
        sim.sync_members();
        sim.view = sim.policy_view(0);
        sim.a_prev = contact_weights(
            sc,
            &sim.links,
            (&sim.trust, None),
            Vec::new(),
            &mut sim.trust_used,
        )
        .0;
        sim.chilled_prev = sim.chilled_slots();

        // Initial innovations (step 0).
        let mut u_rng = rng::stream(sc.seed, replication, Purpose::Initial, 0, 0);
        for init in &sc.initial {
            for _ in 0..init.count {
                let u = rng::uniform(&mut u_rng);
                let value = sc.sectors[init.sector].weight * init.quality;
                let k = sim.push_innovation(init.sector, init.holders[0], NONE, 0, value, u);
                for &h in &init.holders {
                    sim.give(h, k);
                }
                sim.frontier += value;
            }
        }
        sim.extend_rows(0, 0);
        sim.event_start = vec![0; sim.inn.len() + 1];
        for i in 0..n {
            sim.log_prod[i] = sim.log_prod0[i] + sim.held_value(i);
        }
        sim.log_prod_prev.clone_from(&sim.log_prod);
        sim.log_prod0.clone_from(&sim.log_prod);

        // lambda: expected world births at t = 1 equal per_step.
        let intensity = arrival_intensities(sim.sc, &sim.log_prod);
        let total: f64 = intensity.iter().sum();
        sim.lambda = if total > 0.0 {
            sc.innovation.per_step / total
        } else {
            0.0
        };
        // q0: expected frontier growth per step at t = 1 equals frontier_growth.
        let per_innovation: f64 = intensity
            .iter()
            .zip(countries)
            .map(|(&x, c)| {
                let shares = c.specialization.as_deref();
                x * sc
                    .sectors
                    .iter()
                    .enumerate()
                    .map(|(s, sec)| {
                        shares.map_or(sec.share, |v| v[s]) * sec.weight * sec.step_scale
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            * sim.lambda;
        sim.q0 = if per_innovation > 0.0 {
            sc.innovation.frontier_growth / per_innovation
        } else {
            0.0
        };
        sim.count_controlled();
        sim
    }

    /// Bring [`Self::controlled`] to the innovations and view of now: a
    /// recount where the largest effective scopes moved, else only the
    /// innovations born since the last count.
    fn count_controlled(&mut self) {
        let c = &mut self.controlled;
        let scope = &self.view.max_scope;
        let same = c.scope.len() == scope.len()
            && c.scope
                .iter()
                .zip(scope)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            c.scope.clone_from(scope);
            c.by_sector = vec![0; scope.len()];
            c.upto = 0;
        }
        for k in c.upto..self.inn.len() {
            let s = self.inn.sector[k] as usize;
            c.by_sector[s] += u64::from(self.inn.u[k] < scope[s]);
        }
        c.upto = self.inn.len();
    }

    /// List the controllers and targets of regimes added since last call.
    fn sync_members(&mut self) {
        for r in &self.regimes[self.members.len()..] {
            let list = |v: &[bool]| (0..self.n as u32).filter(|&x| v[x as usize]).collect();
            self.members.push((list(&r.controllers), list(&r.targets)));
        }
    }

    /// The view at `step`, built over the current one.
    fn policy_view(&self, step: u32) -> PolicyView {
        match self.variant {
            Variant::Policy => {
                PolicyView::build(self.sc, &self.regimes, &self.members, step, &self.view)
            }
            Variant::Counterfactual => PolicyView::empty(self.n, self.sc.sectors.len()),
        }
    }

    fn push_innovation(
        &mut self,
        sector: usize,
        origin: usize,
        coinventor: u32,
        birth: u32,
        value: f64,
        u: f64,
    ) -> usize {
        let k = self.inn.len();
        self.inn.sector.push(sector as u32);
        self.inn.origin.push(origin as u32);
        self.inn.coinventor.push(coinventor);
        self.inn.birth.push(birth);
        self.inn.value.push(value);
        self.inn.u.push(u);
        self.inn.holder_count.push(0);
        self.inn.holders.push(FixedBitSet::with_capacity(self.n));
        self.sector_count[sector] += 1;
        k
    }

    /// Country i comes to hold innovation k.
    fn give(&mut self, i: usize, k: usize) {
        debug_assert!(!self.inn.holders[k].contains(i));
        debug_assert!(self.rows.get(k).is_none_or(|r| r.exposure_of(i).is_none()));
        self.inn.holders[k].insert(i);
        // The holder counts (adopters are counted the same way in the
        // step's bookkeeping).
        self.inn.holder_count[k] += 1;
        self.held_count[i] += 1;
        self.held_in_sector[self.inn.sector[k] as usize] += 1;
    }

    fn held_value(&self, i: usize) -> f64 {
        (0..self.inn.len())
            .filter(|&k| self.inn.holders[k].contains(i))
            .map(|k| self.inn.value[k])
            .sum()
    }

    /// Add the rows of the innovations born at `step` (indices from `first`):
    /// zero exposure, and one Exp(1) threshold per recipient from the
    /// innovation's own stream (keyed by birth step and index within it;
    /// holders' draws are made and discarded).
    fn extend_rows(&mut self, step: u32, first: usize) {
        let n = self.n;
        let old = self.rows.len();
        let (seed, rep) = (self.sc.seed, self.replication);
        let holders = &self.inn.holders;
        let new_rows: Vec<Row> = (old..self.inn.len())
            .into_par_iter()
            .map(|k| {
                threshold_row(seed, rep, step, (k - first) as u32, n, |i| {
                    holders[k].contains(i)
                })
            })
            .collect();
        self.rows.extend(new_rows);
    }

    /// Metrics of the current state.
    pub fn record(&self) -> StepRecord {
        let sc = self.sc;
        let n = self.n;
        let k_total = self.inn.len() as f64;
        let gdp: Vec<f64> = sc.world.countries.iter().map(|c| c.gdp).collect();
        let trust_mean: Vec<f64> = (0..n)
            .map(|i| {
                if n < 2 {
                    f64::NAN
                } else {
                    (self.trust.row(i).sum() - self.trust[[i, i]]) / (n - 1) as f64
                }
            })
            .collect();
        debug_assert_eq!(self.controlled.upto, self.inn.len());
        let controlled = &self.controlled.by_sector;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let mut values = Vec::with_capacity(self.layout.series.len());
        for series in &self.layout.series {
            let group = &self.layout.groups[series.group];
            let v = match &group.kind {
                GroupKind::Countries(members) => {
                    let mean = |f: &dyn Fn(usize) -> f64| -> f64 {
                        if members.is_empty() {
                            return f64::NAN;
                        }
                        if series.gdp_weighted {
                            let wsum: f64 = members.iter().map(|&i| gdp[i]).sum();
                            members.iter().map(|&i| gdp[i] * f(i)).sum::<f64>() / wsum
                        } else {
                            members.iter().map(|&i| f(i)).sum::<f64>() / members.len() as f64
                        }
                    };
                    let sum =
                        |f: &dyn Fn(usize) -> f64| -> f64 { members.iter().map(|&i| f(i)).sum() };
                    let tally = |f: &dyn Fn(&AdoptionTally) -> (u64, u64)| -> f64 {
                        let (a, b) = members.iter().fold((0u64, 0u64), |acc, &i| {
                            let (x, y) = f(&self.tally[i]);
                            (acc.0 + x, acc.1 + y)
                        });
                        ratio(a as f64, b as f64)
                    };
                    match series.metric {
                        Metric::LogProductivity => mean(&|i| self.log_prod[i]),
                        Metric::LogProductivityGrowth => {
                            mean(&|i| self.log_prod[i] - self.log_prod_prev[i])
                        }
                        Metric::FrontierGap => mean(&|i| self.frontier - self.log_prod[i]),
                        Metric::AdoptionShare => {
                            if k_total > 0.0 {
                                mean(&|i| self.held_count[i] as f64 / k_total)
                            } else {
                                f64::NAN
                            }
                        }
                        Metric::CoinventionShare => ratio(
                            sum(&|i| self.coinv_num[i] as f64),
                            sum(&|i| self.coinv_den[i] as f64),
                        ),
                        Metric::ActiveRegimes => self.view.active.len() as f64,
                        Metric::Controllers => {
                            sum(&|i| f64::from(u8::from(self.view.controllers[i])))
                        }
                        Metric::AffectedEconomies => {
                            sum(&|i| f64::from(u8::from(self.view.affected[i])))
                        }
                        Metric::ControlledShare => {
                            ratio(controlled.iter().sum::<u64>() as f64, k_total)
                        }
                        Metric::CrossBlocAdoptionShare => tally(&|t| (t.count[CROSS], t.count())),
                        Metric::MeanTrust => mean(&|i| trust_mean[i]),
                        Metric::RetaliationsOpened => sum(&|i| f64::from(self.opened_now[i])),
                        Metric::DiffusionLag => tally(&|t| (t.lag(), t.count())),
                        Metric::DiffusionLagWithinBloc => {
                            tally(&|t| (t.lag[WITHIN], t.count[WITHIN]))
                        }
                        Metric::DiffusionLagCrossBloc => tally(&|t| (t.lag[CROSS], t.count[CROSS])),
                    }
                }
                GroupKind::Sector(s) => {
                    let s = *s;
                    let ks = self.sector_count[s] as f64;
                    match series.metric {
                        Metric::AdoptionShare => {
                            ratio(self.held_in_sector[s] as f64, n as f64 * ks)
                        }
                        Metric::ControlledShare => ratio(controlled[s] as f64, ks),
                        Metric::DiffusionLag => {
                            ratio(self.sector_lag[s].0 as f64, self.sector_lag[s].1 as f64)
                        }
                        _ => f64::NAN,
                    }
                }
            };
            values.push(v);
        }
        StepRecord {
            step: self.step,
            values,
        }
    }

    /// Final per-country figures.
    pub fn outcomes(&self) -> Vec<CountryOutcome> {
        let k_total = self.inn.len() as f64;
        (0..self.n)
            .map(|i| CountryOutcome {
                log_productivity: self.log_prod[i],
                growth: self.log_prod[i] - self.log_prod0[i],
                frontier_gap: self.frontier - self.log_prod[i],
                coinvention_share: if self.coinv_den[i] > 0 {
                    self.coinv_num[i] as f64 / self.coinv_den[i] as f64
                } else {
                    f64::NAN
                },
                adoption_share: if k_total > 0.0 {
                    self.held_count[i] as f64 / k_total
                } else {
                    f64::NAN
                },
                retaliations_opened: self.opened_total[i],
            })
            .collect()
    }

    /// Advance one step and return its metrics.
    pub fn step(&mut self) -> StepRecord {
        let t = self.step + 1;
        let n = self.n;
        self.sync_members();
        let n_old = self.inn.len();
        // The policy variant's weights read only trust, and the view and
        // gate classes read no trust: the weights are computed on their own
        // state (taken out and put back) while the classes are placed.
        // The counterfactual holds trust at T0: its weights never move.
        // Thinning (see `run_ahead`): at the start of an epoch, this step's
        // and the epoch's later trust updates are run and the bound weights
        // read the largest trust among them; inside one, the bound weights
        // stay and only the exact ones move.
        let thinning = self.thinning();
        let bound = (thinning && t > self.epoch_until).then(|| self.run_ahead(t));
        if let Some(bound) = &bound {
            self.thin_bound.clone_from(bound);
        }
        let mut a_exact_now: Option<Vec<f64>> = None;
        // Inside a block of thinned steps, this step's exact weights and
        // their slack were computed when it was planned.
        let (planned_exact, planned_slack) = match &mut self.thin_block {
            Some(b) if b.later(t) => {
                let (a, slack) = std::mem::take(&mut b.ahead[(t - b.start - 1) as usize]);
                (Some(a), Some(slack))
            }
            _ => (None, None),
        };
        let weights = (self.variant == Variant::Policy).then(|| {
            let (sc, links) = (self.sc, Arc::clone(&self.links));
            let trust = std::mem::take(&mut self.trust);
            let touched = std::mem::take(&mut self.trust_touched);
            let mut used = std::mem::take(&mut self.trust_used);
            let a_prev = std::mem::take(&mut self.a_prev);
            let a_exact = std::mem::take(&mut self.a_exact);
            let mut exact_used = std::mem::take(&mut self.exact_used);
            let full_width = self.full_width;
            let a_exact_now = &mut a_exact_now;
            move || {
                // Which linked pairs' weights moved since last step, per
                // recipient (unlinked pairs weigh 0 whatever happens): the
                // weights tell as they are updated.
                let (a, changed) = if !thinning {
                    contact_weights(sc, &links, (&trust, Some(&touched)), a_prev, &mut used)
                } else {
                    let a_exact = match planned_exact {
                        // Computed when the block was planned, from the
                        // same trust: the next step's computes them all.
                        Some(planned) => {
                            exact_used.clear();
                            planned
                        }
                        None => {
                            let fresh = a_exact.is_empty();
                            let (a_exact, _) = contact_weights(
                                sc,
                                &links,
                                (&trust, (!fresh).then_some(&touched[..])),
                                a_exact,
                                &mut exact_used,
                            );
                            a_exact
                        }
                    };
                    *a_exact_now = Some(a_exact);
                    match bound {
                        Some(bound) => {
                            contact_weights(sc, &links, (&bound, None), a_prev, &mut used)
                        }
                        None => (a_prev, vec![FixedBitSet::with_capacity(n); n]),
                    }
                };
                // The moved pairs as they are when the restricted pairs,
                // and so the chilled flags, stay as they were (most steps):
                // made here, alongside the classes.
                let moved = Moved::new(&changed, &links.slot, n, full_width);
                (a, changed, moved, trust, touched, used, exact_used)
            }
        });
        let (classes, weights) = match weights {
            Some(weights) => {
                let (classes, weights) = rayon::join(|| self.classes_now(t, n_old), weights);
                (classes, Some(weights))
            }
            None => (self.classes_now(t, n_old), None),
        };
        let Classes {
            same_pairs,
            key_cur,
            recompute_flag,
            rows_in,
            twins,
        } = classes;
        let (a_cur, chilled_cur, moved) = match weights {
            None => (
                std::mem::take(&mut self.a_prev),
                std::mem::take(&mut self.chilled_prev),
                Moved::new(&[], &self.links.slot, n, None),
            ),
            Some((a, mut changed, moved, trust, touched, used, exact_used)) => {
                self.trust = trust;
                self.trust_touched = touched;
                self.trust_used = used;
                self.exact_used = exact_used;
                if same_pairs {
                    (a, std::mem::take(&mut self.chilled_prev), moved)
                } else {
                    // Pairs whose chilled flag moved move too.
                    let chilled = self.chilled_slots();
                    for j in 0..n {
                        for &i in self.links.of(j).1 {
                            let at = self.links.slot[j * n + i as usize] as usize;
                            if chilled[at] != self.chilled_prev[at] {
                                changed[i as usize].insert(j);
                            }
                        }
                    }
                    let moved = Moved::new(&changed, &self.links.slot, n, self.full_width);
                    (a, chilled, moved)
                }
            }
        };
        let moved_none = moved.to.is_empty();
        // Births at t use l(t-1) and T(t-1), not this step's adoptions nor
        // the class terms: they and their rows' thresholds are drawn while
        // the class terms are brought to the step (most of that work comes
        // in pieces too small to share out well). Then, beside them too,
        // the policy variant updates trust, which reads neither adoptions
        // nor what they change (MODEL.md section 4; the retaliations it
        // decides are applied at the end of the step), so that the rows
        // have both cores. A block planned ahead (see `plan_block`) and the
        // direct evaluation of exposures read T(t-1), kept for them.
        let (sc, replication, variant) = (self.sc, self.replication, self.variant);
        let before_update = self
            .block_end(t)
            .map(|last| (last, self.trust.clone(), self.unsettled.clone()));
        // Thinning: the exposures are those of the epoch's bound weights.
        let trust_before = self.verify_exposure.then(|| match thinning {
            true => self.thin_bound.clone(),
            false => self.trust.clone(),
        });
        let (lambda, q0, verify) = (self.lambda, self.q0, self.verify_exposure);
        let (log_prod, view, regimes) = (&self.log_prod, &self.view, &self.regimes);
        let (partners, sector_epoch) = (&self.partners, &self.sector_epoch);
        let retaliating = &self.retaliating[..];
        let (trust, unsettled, touched) = (
            &mut self.trust,
            &mut self.unsettled[..],
            &mut self.trust_touched[..],
        );
        let kept_r = &mut self.kept_r;
        let queued = match self.trust_queue.front() {
            Some(q) if q.step == t => self.trust_queue.pop_front(),
            _ => None,
        };
        let mut partner_cache = std::mem::take(&mut self.partner_cache);
        let born = || -> (Vec<Birth>, Vec<Row>, Vec<Retaliation>) {
            let arrivals = Arrivals {
                sc,
                replication,
                variant,
                lambda,
                q0,
                log_prod,
                trust: &*trust,
                view,
                partners,
                sector_epoch,
                verify,
            };
            let births = arrivals.births(t, &mut partner_cache);
            let rows = births
                .par_iter()
                .enumerate()
                .map(|(q, b)| {
                    let coinventor = b.coinventor as usize;
                    threshold_row(sc.seed, replication, t, q as u32, n, |i| {
                        i == b.origin || i == coinventor
                    })
                })
                .collect();
            let decided = match variant {
                Variant::Policy => match queued {
                    Some(q) => {
                        *trust = q.trust;
                        unsettled.copy_from_slice(&q.unsettled);
                        touched.copy_from_slice(&q.touched);
                        q.decided
                    }
                    None => {
                        let policy = (view, &regimes[..], retaliating);
                        let state = (trust, unsettled, touched);
                        trust_step(sc, replication, policy, state, Some(kept_r), t)
                    }
                },
                Variant::Counterfactual => Vec::new(),
            };
            (births, rows, decided)
        };
        let bring = || {
            let terms = ClassTerms {
                families: &mut self.families,
                layers: &mut self.layers,
                covers: &mut self.covers,
                gates: &self.gates,
                descs: &self.interner.descs,
                links: &self.links,
                scale: self.scale,
                t,
                verify: self.verify_exposure,
            };
            let (family_d, mut class_d) =
                terms.bring(&rows_in, &twins, &a_cur, &chilled_cur, &moved);
            whole_changes(&mut class_d, &self.layers, &family_d, &rows_in);
            let (family_c, class_c) =
                compact_changes(&moved, &rows_in, &self.layers, &family_d, &class_d);
            (family_d, class_d, family_c, class_c)
        };
        let ((family_d, class_d, family_c, class_c), (births, born_rows, decided)) =
            rayon::join(bring, born);
        self.partner_cache = partner_cache;

        debug_assert_eq!(self.event_start.len(), n_old + 1);
        let absorptive: Vec<f64> = self
            .sc
            .world
            .countries
            .iter()
            .map(|c| c.absorptive)
            .collect();
        // Which rows to advance, through which step: every row through this
        // step; or, looking ahead, every row through the next few steps at
        // the start of a block, and inside one only the rows born since
        // (the older rows are already there): in the counterfactual, whose
        // class terms never move, last step's births catch up with the
        // block; in the policy variant, whose terms of later steps are
        // planned for the classes in use when the block starts, every
        // birth of the block goes one step at a time, at this step's terms.
        let mut plan: Vec<AheadTerms> = Vec::new();
        let (first, until) = if t <= self.ahead_until {
            debug_assert!(!self.ahead.is_empty());
            match self.variant {
                Variant::Counterfactual => (self.new_from, self.ahead_until),
                // Every row is looked at: those that may change class and
                // those born last step go on from here.
                Variant::Policy if self.thin_block.as_ref().is_some_and(|b| b.later(t)) => {
                    (0, self.ahead_until)
                }
                Variant::Policy => (self.block_first, t),
            }
        } else if self.lookahead > 1 && !self.verify_exposure {
            let last = self.lookahead_end(t);
            match self.variant {
                Variant::Counterfactual => (0, last),
                Variant::Policy if thinning => {
                    self.thin_block = self.thin_block(t, last, &a_cur);
                    (0, self.thin_block.as_ref().map_or(t, |b| b.last))
                }
                Variant::Policy => {
                    plan = match before_update {
                        Some((last, trust, unsettled)) => self.plan_block(
                            t,
                            last,
                            (trust, unsettled),
                            (&a_cur, &chilled_cur),
                            &rows_in,
                        ),
                        None => Vec::new(),
                    };
                    self.block_first = n_old;
                    (0, t + plan.len() as u32)
                }
            }
        } else {
            (0, t)
        };
        if until > t && self.variant == Variant::Counterfactual {
            // The counterfactual looks ahead only where its class terms
            // never move.
            assert!(
                moved_none && (0..self.new_from).all(|k| !recompute_flag[k]),
                "lookahead with class terms that move"
            );
        }
        let thin_slack = match planned_slack {
            Some(slack) => slack,
            None => a_exact_now
                .as_deref()
                .map(|a_ex| diffuse::Slack::new(n, &a_cur, a_ex))
                .filter(|s| !s.is_empty()),
        };
        // Inside a block of thinned steps no pair moves after its first
        // step: its later steps' terms are this step's, unmoved.
        let block = self.thin_block.as_ref().filter(|b| b.holds(t));
        let still = Moved::new(&[], &self.links.slot, n, None);
        debug_assert!(block.is_none_or(|b| b.start == t || moved_none));
        // Thinning at a step's exact weights and slack (the bound weights,
        // chilled flags and gates stay through a block).
        let (gates, keep_all) = (&self.gates, self.thin_keep_all);
        let thin_at = |slack, a_exact| diffuse::Thin {
            slack,
            a_bound: &a_cur,
            a_exact,
            chilled: &chilled_cur,
            gates,
            keep_all,
        };
        let inputs = DiffuseInputs {
            links: &self.links,
            new_from: self.new_from,
            sector: &self.inn.sector,
            events: &self.events,
            event_start: &self.event_start,
            key_cur: &key_cur,
            recompute_flag: &recompute_flag,
            terms: std::iter::once(Terms {
                families: &self.families,
                layers: &self.layers,
                moved: &moved,
                family_d: &family_d,
                class_d: &class_d,
                family_c: &family_c,
                class_c: &class_c,
            })
            .chain(plan.iter().map(AheadTerms::terms))
            .chain((block.is_some() && until > t).then_some(Terms {
                families: &self.families,
                layers: &self.layers,
                moved: &still,
                family_d: &family_d,
                class_d: &class_d,
                family_c: &family_c,
                class_c: &class_c,
            }))
            .collect(),
            corrections: self.corrections,
            thin: thin_slack
                .as_ref()
                .map(|slack| thin_at(slack, a_exact_now.as_deref().expect("exact weights"))),
            thin_ahead: match block {
                Some(b) => b.ahead[(t - b.start) as usize..(until - b.start) as usize]
                    .iter()
                    .map(|(a_exact, slack)| slack.as_ref().map(|slack| thin_at(slack, a_exact)))
                    .collect(),
                None => Vec::new(),
            },
            beta_a: absorptive
                .iter()
                .map(|&a| (self.sc.diffusion.beta * a / self.scale) as f32)
                .collect(),
            nu_a: self
                .sc
                .sectors
                .iter()
                .flat_map(|s| absorptive.iter().map(move |&a| (s.reinvention * a) as f32))
                .collect(),
            #[cfg(target_arch = "x86_64")]
            x86_v3: !self.portable_only && crate::cpu::x86_v3(),
            #[cfg(target_arch = "x86_64")]
            x86_avx512: !self.portable_only && !self.avx2_only && crate::cpu::x86_avx512(),
        };
        let span = (until - t + 1) as usize;
        // Steps each row goes through now (0: none). In a block of thinned
        // steps, rows that may change class go one step at a time, the
        // others (and rows born since, when they first diffuse) through the
        // block's last step, each visited once.
        let (new_from, sector, u) = (self.new_from, &self.inn.sector, &self.inn.u);
        let span_of = |k: usize| match block {
            None => span,
            Some(b) => match (b.keeps(sector[k], u[k]), b.start == t || k >= new_from) {
                (true, true) => span,
                (true, false) => 0,
                (false, _) => 1,
            },
        };
        // Diffusion reads only last step's state and the rows' own, one
        // innovation's row at a time; each task also marks its
        // innovations' new holders (read by no other task). Per task, the
        // adopters of each step, in the order of the rows.
        let parts: Vec<Vec<Vec<(u32, u32)>>> = self.rows[first..n_old]
            .par_chunks_mut(ROWS_PER_TASK)
            .zip(self.inn.holders[first..n_old].par_chunks_mut(ROWS_PER_TASK))
            .enumerate()
            .fold(
                || (vec![Vec::new(); span], Scratch::default()),
                |(mut outs, mut scratch), (c, (rows, holders))| {
                    for q in 0..rows.len() {
                        let k = first + c * ROWS_PER_TASK + q;
                        let span = span_of(k);
                        if span == 0 {
                            continue;
                        }
                        // The next row's arrays are elsewhere on the heap.
                        if let Some(next) = rows.get(q + 1)
                            && span_of(k + 1) > 0
                        {
                            next.prefetch();
                            rows::prefetch_lines(holders[q + 1].as_slice(), 256);
                        }
                        let outs = &mut outs[..span];
                        inputs.advance(k, &mut rows[q], &mut holders[q], outs, &mut scratch);
                    }
                    (outs, scratch)
                },
            )
            .map(|(outs, _)| outs)
            .collect();
        // Rows in ascending order within each step: the older rows' adopters
        // (already in `ahead`) come before those of last step's births.
        if self.ahead.len() < span {
            self.ahead.resize_with(span, Vec::new);
        }
        for part in parts {
            for (ahead, list) in self.ahead.iter_mut().zip(part) {
                ahead.push(list);
            }
        }
        self.ahead_until = self.ahead_until.max(until);
        let mut lists = self.ahead.pop_front().expect("this step's adopters");
        let mut adoptions = if lists.len() == 1 {
            lists.pop().expect("one list")
        } else {
            lists.concat()
        };
        if block.is_some() {
            // Rows advanced at different steps of the block: back in
            // innovation order (each row's adopters of a step are found at
            // one visit, in ascending order).
            adoptions.sort_by_key(|&(k, _)| k);
        }

        if let Some(trust) = &trust_before {
            self.check_exposures(t, n_old, &adoptions, trust);
        }

        self.log_prod_prev.clone_from(&self.log_prod);
        // The holder bitsets were marked in the row updates. Adopters come
        // by innovation: what depends on the innovation only is read once,
        // and each innovation's count is noted for the next step's rows.
        // Slices of n countries (held in registers, one bound check an
        // adopter rather than a reload of each vector a write).
        let inn = &mut self.inn;
        let (held_count, held_in_sector) = (&mut self.held_count[..n], &mut self.held_in_sector);
        let (log_prod, tally, sector_lag) = (
            &mut self.log_prod[..n],
            &mut self.tally[..n],
            &mut self.sector_lag,
        );
        let bloc = &self.bloc[..n];
        let mut event_start = {
            let mut event_start = vec![0u32; n_old + 1];
            for group in adoptions.chunk_by(|a, b| a.0 == b.0) {
                let k = group[0].0 as usize;
                let count = group.len() as u32;
                event_start[k + 1] += count;
                inn.holder_count[k] += count;
                let s = inn.sector[k] as usize;
                let value = inn.value[k];
                let lag = u64::from(t - inn.birth[k]);
                let origin_bloc = bloc[inn.origin[k] as usize];
                // Per adopter, the holder counts (as in `give`) and the
                // productivity and lag tallies.
                for &(_, i) in group {
                    let i = i as usize;
                    held_count[i] += 1;
                    log_prod[i] += value;
                    let tl = &mut tally[i];
                    let side = usize::from(origin_bloc != bloc[i]);
                    tl.count[side] += 1;
                    tl.lag[side] += lag;
                }
                held_in_sector[s] += u64::from(count);
                let sl = &mut sector_lag[s];
                sl.0 += lag * u64::from(count);
                sl.1 += u64::from(count);
            }
            event_start
        };
        self.events = adoptions;
        self.new_from = n_old;
        for b in births {
            let k = self.push_innovation(b.sector, b.origin, b.coinventor, t, b.value, b.u);
            self.give(b.origin, k);
            self.log_prod[b.origin] += b.value;
            self.coinv_den[b.origin] += 1;
            if b.coinventor != NONE {
                let c = b.coinventor as usize;
                self.give(c, k);
                self.log_prod[c] += b.value;
                self.coinv_den[c] += 1;
                self.coinv_num[c] += 1;
                self.coinv_num[b.origin] += 1;
            }
            self.frontier += b.value;
        }
        self.rows.extend(born_rows);
        // The births have no events yet.
        event_start.resize(self.inn.len() + 1, 0);
        for k in 0..n_old {
            event_start[k + 1] += event_start[k];
        }
        let total = event_start[n_old];
        event_start[n_old + 1..].fill(total);
        self.event_start = event_start;

        self.key_prev = key_cur;
        self.rows_prev = rows_in;
        self.chilled_prev = chilled_cur;
        self.a_prev = a_cur;
        if let Some(a) = a_exact_now {
            self.a_exact = a;
        }
        self.opened_now.iter_mut().for_each(|x| *x = 0);
        self.retaliate(decided, t);
        self.step = t;
        self.count_controlled();
        self.record()
    }

    /// This step's policy view (the policy variant's; the counterfactual's
    /// is empty at every step), the gate class of every live innovation,
    /// which rows need recomputing (new, or of a class new to them), the
    /// live innovations per class, and the gate products of the classes
    /// new in use (see [`Classes`]).
    fn classes_now(&mut self, t: u32, n_old: usize) -> Classes {
        let mut same_pairs = true;
        let mut moved_scopes = vec![Vec::new(); self.sc.sectors.len()];
        if self.variant == Variant::Policy {
            // Run ahead for thinning, or built here.
            let queued = match self.trust_queue.front_mut() {
                Some(q) if q.step == t => q.view.take(),
                _ => None,
            };
            let next_view = queued.unwrap_or_else(|| self.policy_view(t));
            // The same restricted pairs (the index is shared only then).
            same_pairs = Arc::ptr_eq(&next_view.pair_start, &self.view.pair_start);
            moved_scopes = next_view.scope_changes(&self.view);
            for (epoch, moved) in self.sector_epoch.iter_mut().zip(&moved_scopes) {
                if !same_pairs || !moved.is_empty() {
                    *epoch += 1;
                }
            }
            self.view = next_view;
        }
        // Gate classes of the live innovations at this step: an older
        // innovation whose control draw no regime's scope moved past since
        // last step (every one in the counterfactual) keeps last step's
        // class, and only the others and last step's births are placed.
        let key_cur = self.assign_keys(n_old, Some(&moved_scopes));
        if self.verify_exposure {
            assert_eq!(
                key_cur,
                self.assign_keys(n_old, None),
                "classes kept at step {t}"
            );
        }
        let mut recompute_flag = vec![false; n_old];
        // For each class, the class last step of the first innovation that
        // moved into it (a likely near twin).
        let mut came_from = vec![NONE; self.interner.descs.len()];
        for k in 0..n_old {
            if key_cur[k] != NONE && (k >= self.new_from || key_cur[k] != self.key_prev[k]) {
                recompute_flag[k] = true;
                if k < self.new_from && self.key_prev[k] != NONE {
                    let from = &mut came_from[key_cur[k] as usize];
                    if *from == NONE {
                        *from = self.key_prev[k];
                    }
                }
            }
        }
        // Live innovations per class, counted once for every use below.
        let rows_in = class_rows(&key_cur, self.interner.descs.len());
        let twins = self.build_gates(&rows_in, &came_from);
        Classes {
            same_pairs,
            key_cur,
            recompute_flag,
            rows_in,
            twins,
        }
    }

    /// The last step a block starting at step t may reach: `lookahead`
    /// steps on, or the run's last.
    fn lookahead_end(&self, t: u32) -> u32 {
        (t + self.lookahead - 1).min(self.sc.steps.max(t))
    }

    /// Whether the policy variant thins (see [`Self::run_ahead`]): on
    /// dense networks only, where every step's weight changes reach every
    /// pair; sparse ones plan blocks ahead instead ([`Self::block_end`]).
    fn thinning(&self) -> bool {
        self.variant == Variant::Policy && self.links.dense && self.thin_w > 1
    }

    /// Plan a block of thinned steps from step t to at most `last`, or
    /// None if it would hold this step only.
    ///
    /// Inside an epoch of thinning (see [`Self::run_ahead`]) the bound
    /// weights stay, so where the restricted pairs (and so the chilled
    /// flags) stay too, no pair moves and the class terms stay this
    /// step's. A row whose gate class stays as well then does the same
    /// operations at each step of the block whether it is advanced one
    /// step at a time or through the whole block while it sits in cache,
    /// as the counterfactual does (see [`Self::lookahead`]); only the
    /// thinning reads each step's own exact weights. The trust updates
    /// run ahead give the block's views and exact weights: the block ends
    /// before the restricted pairs change and at the last update run
    /// ahead. An older innovation keeps its class unless its control draw
    /// lies in a step's scope changes (see [`Self::assign_keys`]): rows
    /// whose draw lies in any of the block's go one step at a time, the
    /// others are visited once, at the block's first step or, born within
    /// it, at their first diffusion. The same operations in the same
    /// order: the same bits (a test compares every step with blocks of 1).
    fn thin_block(&self, t: u32, last: u32, a_bound: &[f64]) -> Option<ThinBlock> {
        let n = self.n;
        let mut block = ThinBlock {
            start: t,
            last: t,
            moved: vec![Vec::new(); self.sc.sectors.len()],
            ahead: Vec::new(),
        };
        // The exact weights read T(s - 1) at step s: this step's trust
        // (T(t), taken from the queue), then the queue's.
        let mut view = &self.view;
        let mut trusts = vec![&self.trust];
        for q in &self.trust_queue {
            let s = q.step;
            let Some(next) = q.view.as_ref() else { break };
            if s != block.last + 1 || s > last || !Arc::ptr_eq(&next.pair_start, &view.pair_start) {
                break;
            }
            for (m, c) in block.moved.iter_mut().zip(next.scope_changes(view)) {
                m.extend(c);
            }
            view = next;
            trusts.push(&q.trust);
            block.last = s;
        }
        if block.last == t {
            return None;
        }
        trusts.truncate((block.last - t) as usize);
        let (sc, links) = (self.sc, &*self.links);
        block.ahead = trusts
            .par_iter()
            .map(|trust| {
                let (a, _) = contact_weights(sc, links, (trust, None), Vec::new(), &mut Vec::new());
                let slack = diffuse::Slack::new(n, a_bound, &a);
                (a, (!slack.is_empty()).then_some(slack))
            })
            .collect();
        Some(block)
    }

    /// Start an epoch of thinning at step t; return the trust its bound
    /// weights read.
    ///
    /// Every step moves some of the policy variant's weights (trust
    /// recovers or erodes), and each moved weight changes the exposure of
    /// every non-holder it reaches. Thinning moves them once an epoch
    /// instead: the rows advance on exposures at weights from a trust
    /// that bounds the epoch's trust from above, so at hazards at least
    /// the exact ones, and each adoption drawn there (a candidate) is kept
    /// if its threshold was passed at the exact hazard h too, which
    /// happens with probability (1 - exp(-h)) / (1 - exp(-h_bound)); a
    /// rejected candidate goes on with a fresh residual made from its
    /// threshold (see `DiffuseInputs::thin_filter`). Each step's chance of adoption is
    /// then exactly 1 - exp(-h), and what is left of a threshold is
    /// Exp(1) whatever happened before, so the adoption times have
    /// MODEL.md section 5's distribution (which allows any exact method);
    /// the draws are not those of a run without thinning.
    ///
    /// Trust reads no adoptions (MODEL.md section 4), so the bound is
    /// exact: this step's trust update and those of the epoch's later
    /// steps are run here, up to the first that decides a retaliation
    /// (which changes the regimes of the steps after it), and kept for
    /// their steps, which take them instead of updating (the same state
    /// and decisions: trust of step s depends only on the view, regimes
    /// and retaliations in force at s). The epoch ends at the step after
    /// one that decides (whose weights read its trust), after `thin_w`
    /// steps, or at the run's end; where it ends by length, its last
    /// step's update is run and kept too (the weights never read it; a
    /// block of thinned steps, see [`Self::thin_block`], needs its view).
    /// Returns, per pair, the largest trust
    /// the epoch's weights read, T(t - 1) to T(end - 1); weights grow with
    /// trust, so the bound weights are at least the exact ones, bit for
    /// bit.
    fn run_ahead(&mut self, t: u32) -> Array2<f64> {
        debug_assert!(self.trust_queue.is_empty());
        let end = (t + self.thin_w - 1).min(self.sc.steps.max(t));
        let mut trust = self.trust.clone();
        let mut bound = trust.clone();
        let mut unsettled = self.unsettled.clone();
        let mut touched = vec![false; self.n];
        let mut view = self.policy_view(t);
        self.epoch_until = end;
        // The epoch's last step's update too (its weights read T(end - 1),
        // not its own), so that a block of thinned steps may reach it.
        for s in t..=end {
            let decided = trust_step(
                self.sc,
                self.replication,
                (&view, &self.regimes, &self.retaliating),
                (&mut trust, &mut unsettled, &mut touched),
                Some(&mut self.kept_r),
                s,
            );
            if s < end {
                ndarray::Zip::from(&mut bound)
                    .and(&trust)
                    .for_each(|b, &x| *b = b.max(x));
            }
            let decides = !decided.is_empty() && s < end;
            // The next step's view, built over this one (as its classes
            // would) before this one is queued.
            let next = (!decides && s < end)
                .then(|| PolicyView::build(self.sc, &self.regimes, &self.members, s + 1, &view));
            self.trust_queue.push_back(QueuedTrust {
                step: s,
                view: Some(view),
                trust: trust.clone(),
                unsettled: unsettled.clone(),
                touched: touched.clone(),
                decided,
            });
            match next {
                Some(next) => view = next,
                None => {
                    if decides {
                        self.epoch_until = s + 1;
                    }
                    break;
                }
            }
        }
        if self.thin_loosen > 0.0 {
            let loosen = self.thin_loosen;
            bound.mapv_inplace(|x| (x + loosen).min(1.0));
        }
        bound
    }

    /// The last step of the block the policy variant plans at step t
    /// ([`Self::plan_block`]), or None where it plans none: inside a
    /// block, without lookahead or with the self-checks on, on dense
    /// networks, at the last step, or where a regime starts, ends or is
    /// rescheduled next step. Read before the step's trust update, which
    /// keeps T(t-1) for the block only where one is planned.
    fn block_end(&self, t: u32) -> Option<u32> {
        // Dense networks: each step's copy of the class terms has a value
        // per pair of countries, and a block's copies crowd the rows out of
        // the cache (medium.toml, policy variant alone, one thread: 220 ->
        // 170 steps a second with blocks of 8; see results/BENCHMARKS.md).
        if self.variant != Variant::Policy
            || t <= self.ahead_until
            || self.lookahead <= 1
            || self.verify_exposure
            || self.links.dense
        {
            return None;
        }
        let last = self.lookahead_end(t);
        // A regime starting, ending or rescheduled next step ends the block
        // before it starts. (Retaliations decided this step are applied
        // at its end: the regimes read here are those of plan_block.)
        let same = |r: &ExportControl| {
            r.is_active(t) == r.is_active(t + 1)
                && r.sectors.iter().all(|&(_, base)| {
                    r.scheduled_scope(base, t).to_bits() == r.scheduled_scope(base, t + 1).to_bits()
                })
        };
        (last > t && self.regimes.iter().all(same)).then_some(last)
    }

    /// Plan a block of steps from t in the policy variant: the class terms
    /// of steps t + 1, t + 2, ... through `last`, and their changes, for the
    /// classes in use now, as long as nothing but trust moves (the same
    /// regimes with the same scopes, so the same classes and chilled
    /// pairs, and no retaliation opened or lifted). Trust, the view and the
    /// weights do not depend on adoptions (MODEL.md section 4), so they are
    /// run ahead on copies (the steps compute them again: the same bits).
    /// `before`: trust and the unsettled rows before this step's update
    /// (T(t-1): the copies start from them); `now`: this step's weights
    /// and chilled flags. Called where [`Self::block_end`] gives `last`;
    /// the block may still end sooner (a retaliation decided on the
    /// copies), and empty: no step planned.
    fn plan_block(
        &self,
        t: u32,
        last: u32,
        before: (Array2<f64>, Vec<bool>),
        now: (&[f64], &[bool]),
        rows: &[usize],
    ) -> Vec<AheadTerms> {
        let (a_now, chilled) = now;
        let sc = self.sc;
        let mut plan = Vec::new();
        debug_assert_eq!(self.block_end(t), Some(last), "a block is planned");
        let (mut trust, mut unsettled) = before;
        let mut touched = vec![false; self.n];
        let mut trust_used = self.trust_used.clone();
        let mut a_prev = a_now.to_vec();
        let mut families = self.families.clone();
        let mut layers = self.layers.clone();
        let mut view: Option<PolicyView> = None;
        for s in t + 1..=last {
            // The view of step s - 1, under which its trust update runs.
            let before = view.as_ref().unwrap_or(&self.view);
            let decided = trust_step(
                sc,
                self.replication,
                (before, &self.regimes, &self.retaliating),
                (&mut trust, &mut unsettled, &mut touched),
                None,
                s - 1,
            );
            if !decided.is_empty() {
                break;
            }
            let next = PolicyView::build(sc, &self.regimes, &self.members, s, before);
            if next.active != self.view.active || next.eff != self.view.eff {
                break;
            }
            // The same view: the same chilled pairs.
            let (a, changed) = contact_weights(
                sc,
                &self.links,
                (&trust, Some(&touched)),
                a_prev,
                &mut trust_used,
            );
            let moved = Moved::new(&changed, &self.links.slot, self.n, None);
            let (family_d, mut class_d) = patch_terms(
                &mut families,
                &mut layers,
                &self.gates,
                (&a, chilled),
                &moved,
            );
            whole_changes(&mut class_d, &layers, &family_d, rows);
            plan.push(AheadTerms {
                families: families.clone(),
                layers: layers.clone(),
                moved,
                family_d,
                class_d,
            });
            a_prev = a;
            view = Some(next);
        }
        plan
    }

    /// Gate class of every live innovation (NONE for those everyone holds).
    /// An innovation's class depends on its sector s, the bucket b of its
    /// control draw and, where a covering regime is extraterritorial, on
    /// which of those its origin controls. Each (s, b) keeps, per origin,
    /// its class, found among the few distinct extraterritorial sets met so
    /// far: the interner (a hash of the whole description) is asked once per
    /// distinct class while a bucket is kept, not once per origin. With
    /// `moved` (per sector, the draws whose covering regimes moved since
    /// last step, as disjoint ascending intervals), an innovation of last
    /// step whose draw lies outside them keeps its class; without, every
    /// class is found afresh.
    /// The buckets met are kept for the next step in the sectors whose
    /// covering regimes do not move (`key_buckets`).
    fn assign_keys(&mut self, n_old: usize, moved: Option<&[Vec<(f64, f64)>]>) -> Vec<u32> {
        let view = &self.view;
        let regimes = &self.regimes;
        let blank =
            |bp: &Vec<f64>| -> Vec<Option<KeyBucket>> { (0..=bp.len()).map(|_| None).collect() };
        let mut table: Vec<Vec<Option<KeyBucket>>> = match moved {
            Some(moved) => {
                let mut table = std::mem::take(&mut self.key_buckets);
                table.resize_with(view.breakpoints.len(), Vec::new);
                for ((t, bp), spans) in table.iter_mut().zip(&view.breakpoints).zip(moved) {
                    if !spans.is_empty() || t.len() != bp.len() + 1 {
                        *t = blank(bp);
                    }
                }
                table
            }
            None => view.breakpoints.iter().map(blank).collect(),
        };
        let mut out = vec![NONE; n_old];
        for (k, key) in out.iter_mut().enumerate() {
            if self.inn.holder_count[k] as usize == self.n {
                continue;
            }
            let s = self.inn.sector[k];
            if k < self.key_prev.len()
                && let Some(moved) = moved
            {
                let u = self.inn.u[k];
                let spans = &moved[s as usize];
                // The first interval ending above u holds u if any does.
                let at = spans.partition_point(|&(_, hi)| hi <= u);
                if spans.get(at).is_none_or(|&(lo, _)| u < lo) {
                    *key = self.key_prev[k];
                    continue;
                }
            }
            let b = view.bucket(s as usize, self.inn.u[k]);
            let origin = self.inn.origin[k] as usize;
            let bucket = table[s as usize][b].get_or_insert_with(|| {
                let cover = view.cover(s as usize, b);
                let ext: Vec<u32> = cover
                    .iter()
                    .copied()
                    .filter(|&r| regimes[r as usize].extraterritorial)
                    .collect();
                let slots = if ext.is_empty() { 1 } else { self.n };
                KeyBucket {
                    cover,
                    ext,
                    by_origin: vec![NONE; slots],
                    classes: Vec::new(),
                }
            });
            let at = if bucket.ext.is_empty() { 0 } else { origin };
            if bucket.by_origin[at] == NONE {
                let ext: Vec<u32> = bucket
                    .ext
                    .iter()
                    .copied()
                    .filter(|&r| regimes[r as usize].controllers[origin])
                    .collect();
                let class = match bucket.classes.iter().find(|(e, _)| *e == ext) {
                    Some(&(_, class)) => class,
                    None => {
                        let class = self.interner.intern(KeyDesc {
                            sector: s,
                            cover: bucket.cover.clone(),
                            ext: ext.clone(),
                        });
                        bucket.classes.push((ext, class));
                        class
                    }
                };
                bucket.by_origin[at] = class;
            }
            *key = bucket.by_origin[at];
        }
        if moved.is_some() {
            self.key_buckets = table;
        }
        out
    }

    /// Whether each slot of [`Links`] is chilled now (never in the
    /// counterfactual, whose view is empty).
    fn chilled_slots(&self) -> Vec<bool> {
        let n = self.n;
        let links = &self.links;
        let mut out = vec![false; links.values()];
        if self.variant == Variant::Policy {
            for j in 0..n {
                for &i in links.of(j).1 {
                    let i = i as usize;
                    out[links.slot[j * n + i] as usize] = self.view.chilled(j, i);
                }
            }
        }
        out
    }

    /// Build the gate factors of the classes in use that have none yet:
    /// per slot of [`Links`], the product of the covering regimes' gates,
    /// or NaN where no regime covers the pair (the chilling factor or 1
    /// then applies), so that M^c(j, i) = (a_ji * boost_s) * gate_c(j, i).
    /// Classes used neither now nor last step are dropped.
    fn build_gates(&mut self, rows_in: &[usize], came_from: &[u32]) -> Vec<Option<Twin>> {
        debug_assert_eq!(self.members.len(), self.regimes.len());
        let classes = self.interner.descs.len();
        debug_assert_eq!(rows_in.len(), classes);
        self.gates.resize(classes, None);
        let prev = &self.rows_prev;
        for (c, g) in self.gates.iter_mut().enumerate() {
            if rows_in[c] == 0 && prev.get(c).is_none_or(|&r| r == 0) {
                *g = None;
            }
        }
        let todo: Vec<bool> = rows_in
            .iter()
            .zip(&self.gates)
            .map(|(&r, g)| r > 0 && g.is_none())
            .collect();
        let n = self.n;
        let sc = self.sc;
        let coop = &sc.cooperation;
        let chill_on = self.variant == Variant::Policy && coop.chilling > 0.0;
        let links = &self.links;
        let build = |c: usize| -> (Arc<Gates>, Option<Twin>) {
            let d = &self.interner.descs[c];
            let s = d.sector as usize;
            let boost = if coop.positive_list[s] {
                1.0 + coop.incentive
            } else {
                1.0
            };
            let chill = if chill_on && !coop.positive_list[s] {
                1.0 - coop.chilling * sc.sectors[s].sensitivity * coop.uncertainty()
            } else {
                1.0
            };
            if d.cover.is_empty() {
                let g = Gates {
                    boost,
                    chill,
                    factor: None,
                };
                return (Arc::new(g), None);
            }
            // A class its innovations came from, whose gates differ at few
            // slots: its products, changed at those slots (by the gate of
            // the counter-regime added there, where it only adds
            // counter-regimes; else the product taken again).
            let parent = came_from.get(c).filter(|&&p| p != NONE).and_then(|&p| {
                let pg = self.gates.get(p as usize)?.as_ref()?;
                let diff = self.gate_diff(c, p as usize, links.values() / 2)?;
                Some((pg, diff))
            });
            if let Some((pg, diff)) = parent {
                let mut factor = pg
                    .factor
                    .clone()
                    .unwrap_or_else(|| Factor::new(vec![f64::NAN; links.values()]));
                for &(at, j, i, added) in &diff {
                    let x = match added {
                        Some(g) => {
                            let x = factor.at(at);
                            let x = if x.is_nan() { 1.0 * g } else { x * g };
                            debug_assert_eq!(
                                x.to_bits(),
                                self.gate_product(d, j as usize, i as usize).to_bits()
                            );
                            x
                        }
                        None => self.gate_product(d, j as usize, i as usize),
                    };
                    factor.set(at, x);
                }
                let g = Gates {
                    boost,
                    chill,
                    factor: Some(factor),
                };
                let mut slots: Vec<(usize, u32, u32)> =
                    diff.iter().map(|&(at, j, i, _)| (at, j, i)).collect();
                slots.sort_unstable();
                slots.dedup();
                let parent = came_from[c];
                return (Arc::new(g), Some(Twin { parent, slots }));
            }
            // Gate products per linked pair, visiting only each covering
            // regime's own (source, target) pairs: counter-regimes are
            // single pairs.
            let mut gate = vec![f64::NAN; links.values()];
            let all: Vec<u32> = (0..n as u32).collect();
            for &r in &d.cover {
                let reg = &self.regimes[r as usize];
                let (controllers, targets) = &self.members[r as usize];
                let sources = if d.ext.contains(&r) {
                    &all
                } else {
                    controllers
                };
                let g = reg.gate();
                for &i in targets {
                    let i = i as usize;
                    for &j in sources {
                        let j = j as usize;
                        let at = links.slot[j * n + i];
                        if at != NONE {
                            let x = &mut gate[at as usize];
                            *x = if x.is_nan() { 1.0 * g } else { *x * g };
                        }
                    }
                }
            }
            let g = Gates {
                boost,
                chill,
                factor: Some(Factor::new(gate)),
            };
            (Arc::new(g), None)
        };
        let ids: Vec<usize> = (0..classes).filter(|&c| todo[c]).collect();
        let built: Vec<_> = ids.par_iter().map(|&c| (c, build(c))).collect();
        let mut twins = vec![None; classes];
        for (c, (g, twin)) in built {
            self.gates[c] = Some(g);
            twins[c] = twin;
        }
        twins
    }

    /// The gate product of class `d` on the pair j -> i, NaN where no
    /// regime of the class covers it: the same products in the same order
    /// (ascending regime) as [`Self::build_gates`] makes them slot by slot.
    fn gate_product(&self, d: &KeyDesc, j: usize, i: usize) -> f64 {
        let view = &self.view;
        debug_assert!(d.ext.is_sorted());
        // Both ascending (the view's active regimes are, and so each
        // pair's list; a class's lists are): merged without repeats, so
        // the product is taken in ascending regime order, as
        // `build_gates` takes it, with no list to allocate and sort.
        let mut own = view
            .pair_regimes(j, i)
            .iter()
            .map(|&a| view.active[a as usize])
            .filter(|r| d.cover.binary_search(r).is_ok())
            .peekable();
        let mut ext = d
            .ext
            .iter()
            .copied()
            .filter(|&r| self.regimes[r as usize].targets[i])
            .peekable();
        let mut x = f64::NAN;
        loop {
            let r = match (own.peek(), ext.peek()) {
                (Some(&p), Some(&q)) if p == q => {
                    ext.next();
                    own.next()
                }
                (Some(&p), Some(&q)) if q < p => ext.next(),
                (Some(_), _) => own.next(),
                (None, _) => ext.next(),
            };
            let Some(r) = r else { break };
            let g = self.regimes[r as usize].gate();
            x = if x.is_nan() { 1.0 * g } else { x * g };
        }
        x
    }

    /// The slots (with their source and target) where the gates of classes
    /// c and p may differ: those of the regimes that one of them has and
    /// the other has not, or has as extraterritorial and the other not
    /// (elsewhere both products run over the same covering regimes in the
    /// same order: the same bits). None unless they are of the same sector
    /// (so the same boost and chilling factor) and those regimes reach
    /// fewer than `limit` slots. Where every such regime is a
    /// counter-regime that c has and p has not, each slot also carries
    /// that counter-regime's gate: c's product there is p's times it (a
    /// counter-regime restricts one pair and has a higher id than the
    /// scenario's regimes, so it is the last factor of the ascending
    /// product, [`Self::gate_product`]).
    fn gate_diff(&self, c: usize, p: usize, limit: usize) -> Option<Vec<GateDiff>> {
        let n = self.n;
        let descs = &self.interner.descs;
        let (d, dp) = (&descs[c], &descs[p]);
        if dp.sector != d.sector {
            return None;
        }
        let mut regs = Vec::new();
        differ(&d.cover, &dp.cover, &mut regs);
        differ(&d.ext, &dp.ext, &mut regs);
        let all = |r: &u32| d.ext.contains(r) || dp.ext.contains(r);
        let cost: usize = regs
            .iter()
            .map(|r| {
                let (controllers, targets) = &self.members[*r as usize];
                targets.len() * if all(r) { n } else { controllers.len() }
            })
            .sum();
        if cost >= limit {
            return None;
        }
        let counters_added = regs
            .iter()
            .all(|&r| r as usize >= self.sc.regimes.len() && dp.cover.binary_search(&r).is_err());
        let mut slots = Vec::new();
        for r in regs {
            let (controllers, targets) = &self.members[r as usize];
            let every = all(&r);
            let gate = counters_added.then(|| self.regimes[r as usize].gate());
            for &i in targets {
                let i = i as usize;
                let mut add = |j: usize| {
                    let at = self.links.slot[j * n + i];
                    if at != NONE {
                        slots.push((at as usize, j as u32, i as u32, gate));
                    }
                };
                if every {
                    (0..n).for_each(&mut add);
                } else {
                    controllers.iter().for_each(|&j| add(j as usize));
                }
            }
        }
        Some(slots)
    }

    /// Open and lift the retaliations that step t's trust update
    /// ([`trust_step`]: perceive, update trust, then decide; MODEL.md
    /// section 4) decided.
    fn retaliate(&mut self, decided: Vec<Retaliation>, t: u32) {
        let n = self.n;
        for r in decided {
            match r {
                Retaliation::Open { i, j, regime } => {
                    self.retaliating[i * n + j] = self.regimes.len() as u32;
                    self.regimes.push(regime);
                    self.opened_now[i] += 1;
                    self.opened_total[i] += 1;
                }
                Retaliation::Lift { i, j, regime } => {
                    self.regimes[regime].end = Some(t);
                    self.retaliating[i * n + j] = NONE;
                }
            }
        }
    }

    /// Regimes in force now, including counter-regimes opened so far.
    pub fn regimes(&self) -> &[ExportControl] {
        &self.regimes
    }

    /// i's trust in j.
    pub fn trust(&self, i: usize, j: usize) -> f64 {
        self.trust[[i, j]]
    }

    pub fn log_productivity(&self) -> &[f64] {
        &self.log_prod
    }

    /// Number of innovations held by each country.
    pub fn held_counts(&self) -> &[u64] {
        &self.held_count
    }

    pub fn innovation_count(&self) -> usize {
        self.inn.len()
    }

    /// Total adoptions by diffusion so far.
    pub fn adoptions(&self) -> u64 {
        self.tally.iter().map(AdoptionTally::count).sum()
    }
}

impl Simulation<'_> {
    /// Turn on the self-checks of the incremental state (tests only: they
    /// are slow): every exposure against a direct evaluation after each
    /// diffusion phase, and every use of kept partner weights against
    /// weights computed afresh.
    pub fn verify_exposures(&mut self, on: bool) {
        // The check reads the rows at the current step.
        assert!(
            self.ahead_until <= self.step,
            "exposure checks start between blocks of lookahead"
        );
        self.verify_exposure = on;
    }

    /// G_jik(t) straight from MODEL.md sections 3.1, 3.2 and 5, without gate
    /// classes or pair indexes.
    fn direct_gate(&self, j: usize, i: usize, k: usize, t: u32) -> f64 {
        let sc = self.sc;
        let coop = &sc.cooperation;
        let s = self.inn.sector[k] as usize;
        let origin = self.inn.origin[k] as usize;
        let (mut covered, mut chilled, mut g) = (false, false, 1.0);
        for r in &self.regimes {
            if !r.is_active(t) {
                continue;
            }
            let eff = |s: usize| {
                if !sc.controllable(s) {
                    return 0.0;
                }
                r.sectors
                    .iter()
                    .find(|p| p.0 == s)
                    .map_or(0.0, |p| r.scheduled_scope(p.1, t))
            };
            if !(0..sc.sectors.len()).any(|s| eff(s) > 0.0) {
                continue;
            }
            if r.targets[i] && r.controllers[j] {
                chilled = true;
            }
            if r.targets[i]
                && self.inn.u[k] < eff(s)
                && (r.controllers[j] || (r.extraterritorial && r.controllers[origin]))
            {
                covered = true;
                g *= r.gate();
            }
        }
        if covered {
            g
        } else if chilled && self.variant == Variant::Policy && !coop.positive_list[s] {
            1.0 - coop.chilling * sc.sectors[s].sensitivity * coop.uncertainty()
        } else {
            1.0
        }
    }

    /// `adopted`: this step's adoptions, by (innovation, country): marked
    /// as holders already, their row entries gone; they count as sources
    /// from the next step on.
    /// `trust`: T(t - 1), under which this step's exposures were formed.
    fn check_exposures(&self, t: u32, n_old: usize, adopted: &[(u32, u32)], trust: &Array2<f64>) {
        let sc = self.sc;
        let mu = sc.diffusion.trust_exponent;
        let adopted_now = |k: usize, i: usize| adopted.binary_search(&(k as u32, i as u32)).is_ok();
        for i in 0..self.n {
            for k in 0..n_old {
                if self.inn.holders[k].contains(i) {
                    assert!(
                        !adopted_now(k, i) || self.rows[k].exposure_of(i).is_none(),
                        "step {t}: country {i} adopted innovation {k} but keeps its row entry"
                    );
                    continue;
                }
                let s = self.inn.sector[k] as usize;
                let boost = if sc.cooperation.positive_list[s] {
                    1.0 + sc.cooperation.incentive
                } else {
                    1.0
                };
                let terms: Vec<f64> = self.inn.holders[k]
                    .ones()
                    .filter(|&j| !adopted_now(k, j))
                    .map(|j| {
                        sc.world.weights[[j, i]]
                            * libm::pow(trust[[i, j]], mu)
                            * self.direct_gate(j, i, k, t)
                            * boost
                    })
                    .collect();
                let direct: f64 = terms.iter().sum();
                let Some(kept) = self.rows[k].exposure_of(i) else {
                    panic!("step {t}: country {i} lacks innovation {k} but has no row entry");
                };
                // Exposures are kept in fixed point, each term rounded to the
                // nearest 2^-F once: the kept sum differs from the exact one
                // by at most half a unit per term, whatever the updates
                // (plus the f64 roundings of the direct evaluation).
                let kept = f64::from(kept) / self.scale;
                let allowed = (terms.len() as f64 * 0.5 + 1e-9) / self.scale
                    + DIRECT_TOLERANCE * (1.0 + direct.abs());
                assert!(
                    (kept - direct).abs() <= allowed,
                    "step {t}: exposure of country {i} to innovation {k} is {kept}, direct evaluation gives {direct}"
                );
            }
        }
    }
}

/// Relative difference allowed between a kept exposure and a direct
/// evaluation of MODEL.md section 5 (see `check_exposures`) beyond the
/// fixed-point roundings: the direct evaluation multiplies the same
/// factors in another order (a few f64 roundings per term).
const DIRECT_TOLERANCE: f64 = 1e-12;

/// Ids in exactly one of two ascending lists.
fn differ(x: &[u32], y: &[u32], out: &mut Vec<u32>) {
    let (mut p, mut q) = (0, 0);
    while p < x.len() || q < y.len() {
        match (x.get(p), y.get(q)) {
            (Some(a), Some(b)) if a == b => (p, q) = (p + 1, q + 1),
            (Some(a), Some(b)) if a < b => {
                out.push(*a);
                p += 1;
            }
            (Some(_), Some(b)) | (None, Some(b)) => {
                out.push(*b);
                q += 1;
            }
            (Some(a), None) => {
                out.push(*a);
                p += 1;
            }
            (None, None) => unreachable!(),
        }
    }
}

/// A new innovation's row: zero exposure, and one Exp(1) threshold per
/// recipient from the innovation's own stream, keyed by its birth step and
/// its index among that step's births (holders' draws are made and
/// discarded, so the stream is read the same way whoever holds).
fn threshold_row(
    seed: u64,
    replication: u32,
    step: u32,
    index: u32,
    n: usize,
    is_holder: impl Fn(usize) -> bool,
) -> Row {
    let mut stream = rng::stream(seed, replication, Purpose::Threshold, step, index);
    let mut thresholds = vec![0.0; n];
    rng::exp1_f32_fill(&mut stream, &mut thresholds);
    Row::new(thresholds, is_holder)
}

/// T^mu, by `sqrt` at the default mu = 0.5: correctly rounded, where the
/// C library's `pow` is within about half a unit in the last place and
/// costs several times as much (about 1.5% of medium_policy.toml's
/// instructions). The two differ in the last bit for about one T in
/// 1,100; that moves a weight by 1e-16 relative, and a fixed-point term
/// (at most 2^30 units) only when it lies within about 1e-7 of a unit of
/// a rounding boundary: no output of the shipped and benchmark scenarios
/// changed (results/BENCHMARKS.md, twenty-second round).
#[inline]
fn trust_power(t: f64, mu: f64) -> f64 {
    if mu == 0.5 {
        t.sqrt()
    } else {
        libm::pow(t, mu)
    }
}

/// a_ji = w_ji * T_ij^mu from `trust`, at the slots of [`Links`] (0 where
/// there is no link), brought up to date in `a` (last step's weights).
/// Only rows of trust marked touched (the last trust update went through
/// them; None: all) are looked at, and a slot whose trust has not moved
/// since its weight was computed (`trust_used`) keeps its value (the same
/// bits); an empty `a` computes every slot. Also returns, per recipient i,
/// the sources j whose weight a_ji changed (none when `a` was empty).
fn contact_weights(
    sc: &Scenario,
    links: &Links,
    trust: (&Array2<f64>, Option<&[bool]>),
    mut a: Vec<f64>,
    trust_used: &mut Vec<f64>,
) -> (Vec<f64>, Vec<FixedBitSet>) {
    let (trust, touched) = trust;
    let n = links.n;
    let mu = sc.diffusion.trust_exponent;
    let w = &sc.world.weights;
    let fresh = a.is_empty();
    if fresh {
        a = vec![0.0; links.values()];
    }
    trust_used.resize(links.values(), f64::NAN);
    let mut moved = vec![FixedBitSet::with_capacity(n); n];
    // The weight of j -> i at its slot (`a`, with the trust it was computed
    // from in `used`), recomputed where that trust moved; whether it moved.
    let refresh = |j: usize, i: usize, a: &mut f64, used: &mut f64| -> bool {
        let t = trust[[i, j]];
        if fresh || t != *used {
            let new = w[[j, i]] * trust_power(t, mu);
            *used = t;
            let moved = !fresh && new != *a;
            *a = new;
            moved
        } else {
            false
        }
    };
    // Rows of trust the last update left as they were hold the trust
    // their weights were computed from: where few rows moved on a dense
    // network, only their links are visited (by recipient: strided reads
    // of the per-slot arrays, which cost more than skipping once a
    // quarter of the rows moved); elsewhere the others are skipped.
    let few = |rows: &[bool]| 4 * rows.iter().filter(|&&r| r).count() < n;
    match touched.filter(|_| !fresh) {
        Some(rows) if links.dense && few(rows) => {
            for i in (0..n).filter(|&i| rows[i]) {
                for j in (0..n).filter(|&j| w[[j, i]] != 0.0) {
                    let at = links.slot[j * n + i] as usize;
                    if refresh(j, i, &mut a[at], &mut trust_used[at]) {
                        moved[i].insert(j);
                    }
                }
            }
        }
        _ => {
            // Source by source, in parallel: each source's slots are its
            // own, and the sources whose weights moved are noted per
            // recipient afterwards.
            let mut parts = Vec::with_capacity(n);
            let (mut a_rest, mut used_rest) = (&mut a[..], &mut trust_used[..]);
            for j in 0..n {
                let len = links.slots_of(j).len();
                let (a_j, rest) = std::mem::take(&mut a_rest).split_at_mut(len);
                a_rest = rest;
                let (used_j, rest) = std::mem::take(&mut used_rest).split_at_mut(len);
                used_rest = rest;
                parts.push((a_j, used_j));
            }
            let lists: Vec<Vec<u32>> = parts
                .into_par_iter()
                .enumerate()
                .with_min_len(8)
                .map(|(j, (a_j, used_j))| {
                    let base = links.slots_of(j).start;
                    let mut list = Vec::new();
                    for &i in links.of(j).1 {
                        let i = i as usize;
                        if !touched.is_none_or(|r| fresh || r[i]) {
                            continue;
                        }
                        let at = links.slot[j * n + i] as usize - base;
                        if refresh(j, i, &mut a_j[at], &mut used_j[at]) {
                            list.push(i as u32);
                        }
                    }
                    list
                })
                .collect();
            for (j, list) in lists.into_iter().enumerate() {
                for i in list {
                    moved[i as usize].insert(j);
                }
            }
        }
    }
    (a, moved)
}

/// The fixed-point scale of a run's exposures. E_ik is at most
/// max_i sum_j w_ji times the largest positive-list boost: trust, gates
/// and chilling factors are at most 1 (the scenario's ranges).
fn exposure_scale(sc: &Scenario) -> f64 {
    let w = &sc.world.weights;
    let inflow = (0..w.ncols())
        .map(|i| w.column(i).iter().filter(|x| **x > 0.0).sum::<f64>())
        .fold(0.0, f64::max);
    let coop = &sc.cooperation;
    let boost = if coop.positive_list.iter().any(|&p| p) {
        1.0 + coop.incentive.max(0.0)
    } else {
        1.0
    };
    rows::fixed_scale(inflow * boost)
}

/// Run one replication of one variant to the end, calling `on_step` after
/// step 0 and every step. Returns the final per-country figures.
pub fn run_variant(
    sc: &Scenario,
    layout: &Layout,
    replication: u32,
    variant: Variant,
    mut on_step: impl FnMut(StepRecord),
) -> Vec<CountryOutcome> {
    let mut sim = Simulation::new(sc, layout, replication, variant);
    on_step(sim.record());
    for _ in 0..sc.steps {
        on_step(sim.step());
    }
    sim.outcomes()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scenario::{FileSource, load_text};

    /// A small world with every policy mechanism switched on: schedules,
    /// regimes starting and ending, extraterritorial reach, chilling, a
    /// positive list, noisy perception and retaliation chains.
    pub(crate) const STRESS: &str = r#"
        steps = 30
        seed = 11
        [world.synthetic]
        count = 14
        blocs = { A = 0.4, B = 0.3, C = 0.3 }
        gdp = { distribution = "lognormal", mu = 0.0, sigma = 1.0 }
        rd = { distribution = "uniform", min = 0.2, max = 2.0 }
        absorptive = { distribution = "uniform", min = 0.3, max = 1.0 }
        [network]
        kind = "gravity"
        [[sector]]
        name = "chips"
        sensitivity = 0.9
        [[sector]]
        name = "ai"
        sensitivity = 0.7
        [[sector]]
        name = "health"
        sensitivity = 0.4
        [[sector]]
        name = "other"
        sensitivity = 0.1
        [innovation]
        per_step = 25
        coinvention = 0.5
        [trust]
        cross_bloc = 0.5
        perception_noise = 0.5
        erosion = 0.6
        retaliation = true
        retaliation_threshold = 0.15
        min_trust = 0.45
        recovery = 0.3
        reciprocity = 0.3
        [policy.cooperation]
        positive_list = ["health"]
        incentive = 0.3
        prohibited_threshold = 0.2
        transparency = 0.2
        chilling = 0.5
        [[policy.export_control]]
        name = "wide"
        controllers = ["bloc:A"]
        targets = ["bloc:B", "bloc:C"]
        sectors = { chips = 0.5, ai = 0.3, health = 0.9, other = 0.8 }
        licence_rate = 0.2
        cost = 0.5
        start = 2
        end = 16
        extraterritorial = true
        schedule = [[2, 0.3], [12, 1.5]]
        [[policy.export_control]]
        name = "short"
        controllers = ["bloc:B"]
        targets = ["all"]
        except = ["bloc:C"]
        sectors = { ai = 0.6 }
        licence_rate = 0.5
        start = 5
        end = 15
    "#;

    /// Every T_ij follows MODEL.md section 4 step by step, bit for bit: with
    /// full transparency R^_ji = min(1, R_ji), so T_ij(t) = clamp(T_ij(t-1) +
    /// rho (T0_ij - T_ij(t-1)) - delta R^_ji) with R from the view at t.
    /// The regimes start and end, so rows are restricted and then recover
    /// with nothing perceived: the update skips rows that perceive nothing
    /// and sit at T0, and must leave them exactly so, and must not skip a
    /// recovering row.
    /// A class's gate product on a pair is the product, in ascending
    /// regime order, of the gates of its regimes that cover the pair: its
    /// regimes with the source as controller and the recipient as target,
    /// and its extraterritorial ones that target the recipient (through
    /// the origin, whatever the source). Checked on every pair for every
    /// class in use, in a world where an extraterritorial regime (id 0)
    /// and a later one from other controllers (id 2) cover the same
    /// recipients, so that the two lists interleave.
    #[test]
    fn gate_products_take_the_covering_regimes_in_ascending_order() {
        let text = format!(
            "{STRESS}{}",
            r#"
        [[policy.export_control]]
        name = "third"
        controllers = ["bloc:C"]
        targets = ["bloc:B"]
        sectors = { chips = 0.7, ai = 0.7 }
        licence_rate = 0.4
        cost = 0.2
        start = 3
        "#
        );
        let loaded = load_text(&text, "gates.toml", FileSource::Embedded, &[]).unwrap();
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        let mut sim = Simulation::new(sc, &layout, 0, Variant::Policy);
        let n = sim.n;
        let (mut covered, mut interleaved) = (0, 0);
        for _ in 0..12 {
            sim.step();
            let mut in_use: Vec<u32> = sim
                .key_prev
                .iter()
                .copied()
                .filter(|&c| c != NONE)
                .collect();
            in_use.sort_unstable();
            in_use.dedup();
            for &c in &in_use {
                let d = &sim.interner.descs[c as usize];
                for j in 0..n {
                    for i in 0..n {
                        let own: Vec<u32> = d
                            .cover
                            .iter()
                            .copied()
                            .filter(|&r| sim.view.active.contains(&r))
                            .filter(|&r| {
                                let (ctrl, targets) = &sim.members[r as usize];
                                ctrl.contains(&(j as u32)) && targets.contains(&(i as u32))
                            })
                            .collect();
                        let ext: Vec<u32> = d
                            .ext
                            .iter()
                            .copied()
                            .filter(|&r| sim.regimes[r as usize].targets[i])
                            .collect();
                        if own.iter().any(|&p| ext.iter().any(|&q| q < p)) {
                            interleaved += 1;
                        }
                        let mut all: Vec<u32> = own.into_iter().chain(ext).collect();
                        all.sort_unstable();
                        all.dedup();
                        let want = all.iter().fold(f64::NAN, |x, &r| {
                            let g = sim.regimes[r as usize].gate();
                            if x.is_nan() { 1.0 * g } else { x * g }
                        });
                        let got = sim.gate_product(d, j, i);
                        assert_eq!(got.to_bits(), want.to_bits(), "class {c}, {j} -> {i}");
                        covered += usize::from(!all.is_empty());
                    }
                }
            }
        }
        assert!(covered > 0 && interleaved > 0, "{covered} {interleaved}");
    }

    /// `PolicyView::since` (what kept values of R_ji are checked by): at
    /// every step of a run with schedules, regimes starting and ending and
    /// retaliations, each active regime had these scopes at every step from
    /// its `since` to now, and other scopes (or none) the step before.
    #[test]
    fn since_is_the_first_step_of_the_scopes_now() {
        let loaded = load_text(STRESS, "stress.toml", FileSource::Embedded, &[]).unwrap();
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        let mut sim = Simulation::new(sc, &layout, 0, Variant::Policy);
        let scopes = |view: &PolicyView, r: u32| -> Option<Vec<u64>> {
            let a = view.active.iter().position(|&x| x == r)?;
            Some(view.rows().nth(a)?.iter().map(|x| x.to_bits()).collect())
        };
        let (mut kept, mut counter) = (0, 0);
        for t in 1..=sc.steps {
            sim.step();
            // Regimes opened at the end of this step have no members yet.
            let regimes = &sim.regimes[..sim.members.len()];
            let fresh =
                |s: u32| PolicyView::build(sc, regimes, &sim.members, s, &PolicyView::default());
            let views: Vec<PolicyView> = (0..=t).map(fresh).collect();
            let now = &sim.view;
            assert_eq!(now.since.len(), now.active.len());
            for (a, &r) in now.active.iter().enumerate() {
                let since = now.since[a];
                assert!(since <= t, "step {t}: regime {r} since {since}");
                let here = scopes(now, r);
                for s in since..=t {
                    assert_eq!(
                        scopes(&views[s as usize], r),
                        here,
                        "step {t}: regime {r} at {s}"
                    );
                }
                if since > 0 {
                    let before = scopes(&views[since as usize - 1], r);
                    assert_ne!(before, here, "step {t}: regime {r} since {since}");
                }
                kept += usize::from(since < t);
                counter += usize::from(r as usize >= sc.regimes.len());
            }
        }
        // Regimes kept their scopes across steps, and retaliations were
        // among them.
        assert!(kept > 0 && counter > 0, "{kept} {counter}");
    }

    /// Values of R are remembered by what they depend on: the same
    /// regimes' lists under other sector weights give other values, and a
    /// remembered value is the one a fresh computation gives.
    #[test]
    fn remembered_restrictiveness_depends_on_the_sector_weights() {
        let weighted = ["sector[\"chips\"].weight=5".to_string()];
        let plain = load_text(STRESS, "stress.toml", FileSource::Embedded, &[]).unwrap();
        let heavy = load_text(STRESS, "stress.toml", FileSource::Embedded, &weighted).unwrap();
        let (a, b) = (&plain.scenario, &heavy.scenario);
        let layout = Layout::new(a);
        let mut sim = Simulation::new(a, &layout, 0, Variant::Policy);
        for _ in 0..8 {
            sim.step();
        }
        let view = &sim.view;
        let n = sim.n;
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..n).map(move |j| (j, i)))
            .filter(|&(j, i)| j != i && view.chilled(j, i))
            .collect();
        assert!(!pairs.is_empty());
        let mut differ = 0;
        for &(j, i) in &pairs {
            policy::forget_restrictiveness();
            let cold = view.restrictiveness(b, j, i);
            policy::forget_restrictiveness();
            let first = view.restrictiveness(a, j, i);
            let warm = view.restrictiveness(b, j, i);
            assert_eq!(warm.to_bits(), cold.to_bits(), "R of {j} -> {i}");
            assert_eq!(view.restrictiveness(a, j, i).to_bits(), first.to_bits());
            differ += usize::from(first != warm);
        }
        assert!(differ > 0, "{} pairs", pairs.len());
    }

    #[test]
    fn trust_follows_the_update_rule_in_every_row() {
        let over = ["policy.cooperation.transparency=1".to_string()];
        let loaded = load_text(STRESS, "stress.toml", FileSource::Embedded, &over).unwrap();
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        let mut sim = Simulation::new(sc, &layout, 0, Variant::Policy);
        let (n, tp) = (sim.n, &sc.trust);
        let (mut moved, mut recovering) = (0, 0);
        for t in 1..=sc.steps {
            let before = sim.trust.clone();
            sim.step();
            let view = &sim.view;
            for i in 0..n {
                for j in (0..n).filter(|&j| j != i) {
                    let r = if view.chilled(j, i) {
                        view.restrictiveness(sc, j, i).min(1.0)
                    } else {
                        0.0
                    };
                    let (cur, t0) = (before[[i, j]], tp.initial[[i, j]]);
                    let want = (cur + tp.recovery * (t0 - cur) - tp.erosion * r).clamp(0.0, 1.0);
                    let got = sim.trust[[i, j]];
                    assert_eq!(got.to_bits(), want.to_bits(), "T[{i}][{j}] at step {t}");
                    moved += usize::from(got != cur);
                }
                // A row no regime restricts any more, still away from T0.
                let off = (0..n).any(|j| before[[i, j]] != tp.initial[[i, j]]);
                recovering += usize::from(!view.affected[i] && off);
                assert_eq!(sim.trust[[i, i]], before[[i, i]]);
            }
        }
        // The check saw trust move, and rows recovering with nothing
        // perceived.
        assert!(moved > 0 && recovering > 0, "{moved} {recovering}");
    }

    /// Thinning runs trust ahead and keeps the updates for their steps:
    /// trust, the counter-regimes and who retaliates against whom must be
    /// those of a run without thinning, bit for bit, step by step (trust
    /// reads no adoptions), with epochs cut short by retaliation
    /// decisions. The exposures are checked against the epochs' bound
    /// weights throughout.
    #[test]
    fn thinning_takes_the_trust_path_of_a_run_without() {
        // Weights by `sqrt` (mu = 1/2) and by `libm::pow`.
        for over in [None, Some("diffusion.trust_exponent=0.7")] {
            let over: Vec<String> = over.into_iter().map(String::from).collect();
            let loaded = load_text(STRESS, "stress.toml", FileSource::Embedded, &over).unwrap();
            thinning_takes_the_trust_path_in(&loaded.scenario);
        }
    }

    fn thinning_takes_the_trust_path_in(sc: &Scenario) {
        let layout = Layout::new(sc);
        let mut thin = Simulation::new(sc, &layout, 0, Variant::Policy);
        thin.verify_exposures(true);
        let mut plain = Simulation::new(sc, &layout, 0, Variant::Policy);
        plain.thin_w = 1;
        assert!(thin.thinning() && !plain.thinning());
        let (mut epochs, mut cut, mut above) = (0, 0, 0);
        for t in 1..=sc.steps {
            let starts = t > thin.epoch_until;
            thin.step();
            plain.step();
            if starts {
                epochs += 1;
                cut += usize::from(thin.epoch_until < (t + THIN_EPOCH - 1).min(sc.steps));
            }
            let bits = |a: &Array2<f64>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&thin.trust), bits(&plain.trust), "trust at step {t}");
            let names = |s: &Simulation| {
                let r = s.regimes.iter().map(|r| (r.name.clone(), r.end));
                r.collect::<Vec<_>>()
            };
            assert_eq!(names(&thin), names(&plain), "regimes at step {t}");
            assert_eq!(thin.retaliating, plain.retaliating, "step {t}");
            // The bound lies above this step's trust somewhere.
            above += usize::from(
                ndarray::Zip::from(&thin.thin_bound)
                    .and(&thin.trust)
                    .any(|b, x| b > x),
            );
        }
        assert!(thin.opened_total.iter().sum::<u32>() > 0, "no retaliation");
        assert!(cut > 0 && epochs > cut, "{epochs} epochs, {cut} cut short");
        assert!(above > 0);
        assert!(thin.adoptions() > 0);
    }

    /// Thinning draws adoptions with MODEL.md section 5's distribution.
    /// With the bound trust loosened by 0.3 (hazards at the bound well
    /// above the exact ones, so that most candidates face a real chance
    /// of rejection), the adoptions of many replications must match
    /// those of runs without thinning: the total, and its sum over the
    /// steps (which earlier adoptions raise), as paired differences (the
    /// same replication draws the same thresholds). Keeping every
    /// candidate, the same comparison must fail.
    #[test]
    fn thinning_keeps_the_distribution_of_adoptions() {
        const REPS: u32 = 640;
        let loaded = load_text(STRESS, "stress.toml", FileSource::Embedded, &[]).unwrap();
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        // (total adoptions, their sum over the steps) per replication.
        let run = |replication: u32, thin: Option<bool>| -> [f64; 2] {
            let mut sim = Simulation::new(sc, &layout, replication, Variant::Policy);
            match thin {
                None => sim.thin_w = 1,
                Some(keep_all) => {
                    sim.thin_loosen = 0.3;
                    sim.thin_keep_all = keep_all;
                }
            }
            let mut area = 0.0;
            for _ in 0..sc.steps {
                sim.step();
                area += sim.adoptions() as f64;
            }
            [sim.adoptions() as f64, area]
        };
        let plain: Vec<[f64; 2]> = (0..REPS).into_par_iter().map(|r| run(r, None)).collect();
        // z of the mean paired difference, per statistic.
        let z = |keep_all: bool| -> [f64; 2] {
            let other: Vec<[f64; 2]> = (0..REPS)
                .into_par_iter()
                .map(|r| run(r, Some(keep_all)))
                .collect();
            std::array::from_fn(|s| {
                let d: Vec<f64> = other.iter().zip(&plain).map(|(o, p)| o[s] - p[s]).collect();
                let mean = d.iter().sum::<f64>() / d.len() as f64;
                let var =
                    d.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (d.len() - 1) as f64;
                mean / (var / d.len() as f64).sqrt()
            })
        };
        let (thinned, kept) = (z(false), z(true));
        eprintln!("thinned z {thinned:?}, all kept z {kept:?}");
        assert!(
            thinned.iter().all(|z| z.abs() < 4.0),
            "thinned: z = {thinned:?}"
        );
        assert!(
            kept.iter().all(|z| *z > 4.0),
            "every candidate kept: z = {kept:?}"
        );
    }

    #[test]
    fn incremental_exposure_matches_direct_evaluation() {
        check_stress(STRESS);
    }

    /// The same in a world of 66 countries (over 12 steps, to keep the
    /// direct evaluation affordable), so that the blocked row updates (16
    /// exposures, 64 residuals at a time) run, not only their tails.
    #[test]
    fn incremental_exposure_matches_direct_evaluation_in_whole_blocks() {
        check_stress(&wide_stress());
    }

    /// STRESS with 66 countries and 12 steps.
    fn wide_stress() -> String {
        let wide = STRESS
            .replace("count = 14", "count = 66")
            .replace("steps = 30", "steps = 12");
        assert!(wide.contains("count = 66") && wide.contains("steps = 12"));
        wide
    }

    /// The stress world on a Barabasi-Albert network (one value per link).
    fn sparse_stress() -> String {
        let sparse = STRESS.replace(
            "kind = \"gravity\"",
            "kind = \"barabasi_albert\"\n        m = 2",
        );
        assert_ne!(sparse, STRESS);
        sparse
    }

    /// The stress world dense, sparse and wide, each loaded with its
    /// metrics layout.
    fn stress_worlds() -> Vec<(crate::scenario::LoadedScenario, Layout)> {
        [STRESS.to_string(), sparse_stress(), wide_stress()]
            .iter()
            .map(|text| {
                let loaded = load_text(text, "stress.toml", FileSource::Embedded, &[]).unwrap();
                let layout = Layout::new(&loaded.scenario);
                (loaded, layout)
            })
            .collect()
    }

    /// A regime ends while another keeps restricting the same pairs, and
    /// trust never moves: the innovations it covered move into a class
    /// nobody used before, which differs from their old class only at the
    /// ended regime's pairs, whose weights and chilled flags do not move.
    /// Its terms must be right there (once, its matrix was copied from the
    /// old class's and had to be recomputed at those pairs).
    #[test]
    fn incremental_exposure_matches_direct_evaluation_when_a_twin_regime_ends() {
        const TWIN: &str = r#"
            steps = 16
            seed = 5
            [world.synthetic]
            count = 14
            blocs = { A = 0.5, B = 0.5 }
            [network]
            kind = "gravity"
            [[sector]]
            name = "chips"
            sensitivity = 0.9
            [[sector]]
            name = "other"
            sensitivity = 0.1
            [innovation]
            per_step = 25
            [trust]
            erosion = 0.0
            perception_noise = 0.0
            [policy.cooperation]
            chilling = 0.5
            [[policy.export_control]]
            name = "broad"
            controllers = ["bloc:A"]
            targets = ["bloc:B"]
            sectors = { chips = 0.8 }
            licence_rate = 0.2
            start = 1
            end = 8
            [[policy.export_control]]
            name = "narrow"
            controllers = ["bloc:A"]
            targets = ["bloc:B"]
            sectors = { chips = 0.4 }
            licence_rate = 0.5
            start = 1
        "#;
        verify_every_step(TWIN);
    }

    /// The same on a sparse network (one value per link, per-link updates).
    #[test]
    fn incremental_exposure_matches_direct_evaluation_on_a_sparse_network() {
        let sparse = sparse_stress().replace("count = 14", "count = 30");
        let loaded = load_text(&sparse, "stress.toml", FileSource::Embedded, &[]).unwrap();
        assert!(!Links::new(&loaded.scenario.world.weights).dense);
        check_stress(&sparse);
    }

    /// The kernels compiled for AVX2/BMI/POPCNT, and the AVX-512 moved-pair
    /// sums, give the same bits as the portable ones, step by step, dense
    /// and sparse (on a CPU without those features the runs take the
    /// portable path and the test is trivial).
    #[test]
    fn fast_and_portable_kernels_give_the_same_bits() {
        for (loaded, layout) in &stress_worlds() {
            let sc = &loaded.scenario;
            for variant in [Variant::Policy, Variant::Counterfactual] {
                let mut fast = Simulation::new(sc, layout, 0, variant);
                let mut avx2 = Simulation::new(sc, layout, 0, variant);
                avx2.avx2_only = true;
                let mut portable = Simulation::new(sc, layout, 0, variant);
                portable.portable_only = true;
                for _ in 0..sc.steps {
                    let (a, b, c) = (fast.step(), avx2.step(), portable.step());
                    let bits =
                        |r: &StepRecord| r.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&c), "step {}", a.step);
                    assert_eq!(bits(&b), bits(&c), "step {}", a.step);
                }
                assert!(fast.adoptions() > 0);
            }
        }
    }

    #[test]
    fn looking_ahead_gives_the_same_steps_and_exposures() {
        for (loaded, layout) in &stress_worlds() {
            let sc = &loaded.scenario;
            // Records and outcomes as bits (NaN included); the exposures
            // checked directly from step `verify_from` on.
            let run = |lookahead: u32, verify_from: u32| -> Vec<String> {
                let mut sim = Simulation::new(sc, layout, 0, Variant::Counterfactual);
                sim.lookahead = lookahead;
                let mut seen = Vec::new();
                for t in 1..=sc.steps {
                    if t == verify_from {
                        sim.verify_exposures(true);
                    }
                    let r = sim.step();
                    seen.push(format!(
                        "{:?}",
                        r.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                    ));
                }
                assert!(sim.adoptions() > 0);
                seen.push(format!("{:?}", sim.outcomes()));
                seen
            };
            let one = run(1, u32::MAX);
            // Blocks of 3 (steps 1-3 and 4-6 ahead, then checked); of 8 and
            // of the default, the last block cut at the end of the run.
            assert_eq!(run(3, 7), one);
            assert_eq!(run(8, u32::MAX), one);
            assert_eq!(run(LOOKAHEAD, u32::MAX), one);
        }
    }

    /// The policy variant looks ahead on sparse networks while only trust
    /// moves: its later steps' class terms are planned from trust run
    /// ahead, and rows advance through them with each step's moved-pair
    /// changes. Blocks of 1, 3 and 8 must give the same bits, and the
    /// exposures check directly after blocks; blocks must have formed
    /// (regimes flat or ended, trust still moving; with and without
    /// retaliation, whose decisions cut blocks short).
    #[test]
    fn the_policy_variant_looks_ahead_to_the_same_steps() {
        for retaliation in [false, true] {
            // Wide enough for the links to be stored sparse.
            let text = sparse_stress().replace("count = 14", "count = 40").replace(
                "retaliation = true",
                &format!("retaliation = {retaliation}"),
            );
            let loaded = load_text(&text, "stress.toml", FileSource::Embedded, &[]).unwrap();
            let sc = &loaded.scenario;
            let layout = Layout::new(sc);
            let run = |lookahead: u32, verify_from: u32| -> (Vec<String>, u32) {
                let mut sim = Simulation::new(sc, &layout, 0, Variant::Policy);
                sim.lookahead = lookahead;
                let (mut seen, mut ahead, mut verifying) = (Vec::new(), 0, false);
                for t in 1..=sc.steps {
                    // From `verify_from`, once no block is under way.
                    if t >= verify_from && !verifying && sim.ahead_until < t {
                        sim.verify_exposures(true);
                        verifying = true;
                    }
                    let r = sim.step();
                    ahead += u32::from(sim.ahead_until > t);
                    seen.push(format!(
                        "{:?}",
                        r.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                    ));
                }
                assert!(sim.adoptions() > 0);
                seen.push(format!("{:?}", sim.outcomes()));
                (seen, ahead)
            };
            let (one, none) = run(1, u32::MAX);
            assert_eq!(none, 0);
            let (three, ahead) = run(3, 26);
            assert!(ahead > 0, "no block of 3 formed");
            assert_eq!(three, one);
            let (eight, ahead) = run(8, u32::MAX);
            assert!(ahead > 0, "no block of 8 formed");
            assert_eq!(eight, one);
        }
    }

    /// Thinned blocks (dense network, policy variant): rows advanced
    /// through a block at once, those that may change class one step at a
    /// time, must give every step's metrics bit for bit as blocks of one
    /// step do, with and without retaliation, and the exposures must hold
    /// when checked directly after blocks.
    #[test]
    fn thinned_blocks_give_the_same_steps() {
        for retaliation in [false, true] {
            let text = STRESS.replace("count = 14", "count = 40").replace(
                "retaliation = true",
                &format!("retaliation = {retaliation}"),
            );
            let loaded = load_text(&text, "stress.toml", FileSource::Embedded, &[]).unwrap();
            let sc = &loaded.scenario;
            let layout = Layout::new(sc);
            let run = |lookahead: u32, verify_from: u32| -> (Vec<String>, u32, u32) {
                let mut sim = Simulation::new(sc, &layout, 0, Variant::Policy);
                assert!(sim.thinning());
                sim.lookahead = lookahead;
                let (mut seen, mut inside, mut moving) = (Vec::new(), 0, 0);
                let mut verifying = false;
                for t in 1..=sc.steps {
                    if t >= verify_from && !verifying && sim.ahead_until < t {
                        sim.verify_exposures(true);
                        verifying = true;
                    }
                    let r = sim.step();
                    if let Some(b) = sim.thin_block.as_ref().filter(|b| b.later(t)) {
                        inside += 1;
                        moving += u32::from(b.moved.iter().any(|m| !m.is_empty()));
                    }
                    seen.push(format!(
                        "{:?}",
                        r.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                    ));
                }
                assert!(sim.adoptions() > 0);
                seen.push(format!("{:?}", sim.outcomes()));
                (seen, inside, moving)
            };
            let (one, none, _) = run(1, u32::MAX);
            assert_eq!(none, 0);
            let (three, inside, _) = run(3, 20);
            assert!(inside > 0, "no block of 3 formed");
            assert_eq!(three, one);
            let (eight, inside, moving) = run(8, u32::MAX);
            assert!(
                inside > 0 && moving > 0,
                "{inside} steps in blocks, {moving} with moving classes"
            );
            assert_eq!(eight, one);
        }
    }

    #[test]
    fn partner_weights_kept_across_steps_are_those_computed_afresh() {
        // The stress world: schedules, regimes starting and ending,
        // retaliation, noisy trust and co-invention at 0.5. With checks on,
        // every use of kept weights is compared with weights computed
        // afresh; forgetting them before every step changes no bit.
        let loaded = load_text(STRESS, "stress.toml", FileSource::Embedded, &[]).unwrap();
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        for variant in [Variant::Policy, Variant::Counterfactual] {
            let run = |forget: bool| -> Vec<String> {
                let mut sim = Simulation::new(sc, &layout, 0, variant);
                sim.verify_exposures(true);
                let mut seen = Vec::new();
                for _ in 0..sc.steps {
                    if forget {
                        sim.partner_cache.fill(PartnerCache::default());
                    }
                    let r = sim.step();
                    seen.push(format!(
                        "{:?}",
                        r.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                    ));
                }
                assert!(sim.coinv_num.iter().sum::<u64>() > 0, "no co-invention");
                seen.push(format!("{:?}", sim.outcomes()));
                seen
            };
            assert_eq!(run(false), run(true), "{variant:?}");
        }
    }

    fn check_stress(text: &str) {
        let sim_steps = verify_every_step(text);
        let (opened, lifted, steps) = sim_steps;
        // The short wide case has no time to lift any.
        assert!(
            opened > 0 && (lifted > 0 || steps < 30),
            "the stress case must open and lift counter-regimes ({opened} opened, {lifted} lifted)"
        );
    }

    /// Run both variants with every exposure checked after every step;
    /// return the counter-regimes the policy variant opened and lifted, and
    /// the steps.
    fn verify_every_step(text: &str) -> (u32, usize, u32) {
        let loaded = load_text(text, "stress.toml", FileSource::Embedded, &[]).unwrap();
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        let mut counts = (0, 0, sc.steps);
        // Moved-pair corrections as chosen, and always each way (recipient
        // by recipient also with the AVX2 sums where AVX-512 would run; by
        // compact matrix and its complement with columns by country and
        // by moved recipient).
        let runs = [
            (Variant::Policy, Corrections::Chosen, false, None),
            (Variant::Policy, Corrections::Recipients, false, None),
            (Variant::Policy, Corrections::Recipients, true, None),
            (Variant::Policy, Corrections::Sources, false, None),
            (Variant::Policy, Corrections::Matrix, false, Some(true)),
            (Variant::Policy, Corrections::Matrix, false, Some(false)),
            (Variant::Policy, Corrections::Complement, false, Some(true)),
            (Variant::Policy, Corrections::Complement, false, Some(false)),
            (Variant::Counterfactual, Corrections::Chosen, false, None),
        ];
        for (variant, corrections, avx2_only, full_width) in runs {
            let mut sim = Simulation::new(sc, &layout, 0, variant);
            sim.corrections = corrections;
            sim.avx2_only = avx2_only;
            sim.full_width = full_width;
            sim.verify_exposures(true);
            for _ in 0..sc.steps {
                sim.step();
            }
            if variant == Variant::Policy {
                counts.0 = sim.opened_total.iter().sum();
                counts.1 = sim
                    .regimes
                    .iter()
                    .filter(|r| r.name.starts_with("retaliation_") && r.end.is_some())
                    .count();
            }
        }
        counts
    }
}
