//! Trust and retaliation (MODEL.md section 4): each step the countries
//! that some regime restricts perceive how restrictive their partners
//! are (with noise), update their trust, and may open or lift
//! counter-regimes, which the caller applies.

use ndarray::Array2;
use rayon::prelude::*;

use super::policy::{self, KeptRestrictiveness, PolicyView};
use super::rows::NONE;
use crate::model::{ExportControl, Scenario};
use crate::rng::{self, Purpose};
use crate::vmath;

/// A retaliation decided at a step (MODEL.md section 4), in the order of
/// the decisions (the retaliating country i, then the country j it
/// retaliates against).
pub(super) enum Retaliation {
    /// i opens `regime` against j; it takes the next regime index.
    Open {
        i: usize,
        j: usize,
        regime: ExportControl,
    },
    /// i lifts its counter-regime (index `regime`) against j.
    Lift { i: usize, j: usize, regime: usize },
}

/// Perceive, update `trust` (T at t - 1 in, T at t out), then decide
/// retaliation (MODEL.md section 4), under the view, regimes and
/// counter-regimes in force at step t (`policy`); the decisions are
/// returned, in order, for the caller to apply. Only the rows of countries that some regime restricts perceive
/// anything (R_ji > 0 needs a regime with j as controller and i as
/// target), and only they and the rows still away from T0 move; the
/// others are skipped, which leaves them exactly as the update would.
/// R_ji is taken from `kept` (by perceiving row) where it was computed
/// from the same regimes with the same scopes, and kept there.
pub(super) fn trust_step(
    sc: &Scenario,
    replication: u32,
    policy: (&PolicyView, &[ExportControl], &[u32]),
    state: (&mut Array2<f64>, &mut [bool], &mut [bool]),
    kept: Option<&mut Vec<Vec<KeptRestrictiveness>>>,
    t: u32,
) -> Vec<Retaliation> {
    let (view, regimes, retaliating) = policy;
    let (trust, unsettled, touched) = state;
    let n = view.n;
    let tp = &sc.trust;
    let sd = tp.perception_noise * sc.cooperation.uncertainty();
    // The perceiving rows, and where each one's R^_ji (by j) starts in
    // `perceived`.
    let perceiving: Vec<usize> = (0..n).filter(|&i| view.affected[i]).collect();
    let mut row_of = vec![NONE; n];
    for (r, &i) in perceiving.iter().enumerate() {
        row_of[i] = r as u32;
    }
    // R_ji depends only on the list of regimes restricting j -> i, and
    // a controller's pairs share their list, so each row reuses the
    // value of the last list it met; other lists' values are kept from
    // step to step while their regimes' scopes stay (`kept`).
    let mut perceived = vec![0.0; perceiving.len() * n];
    let mut kept_rows: Vec<Option<&mut Vec<KeptRestrictiveness>>> = match kept {
        Some(kept) => kept
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| view.affected[*i])
            .map(|(_, k)| Some(k))
            .collect(),
        None => perceiving.iter().map(|_| None).collect(),
    };
    perceived
        .par_chunks_mut(n.max(1))
        .zip(perceiving)
        .zip(kept_rows.par_iter_mut())
        .for_each_init(
            || (policy::RestrictScratch::default(), NoiseScratch::default()),
            |(scratch, noise), ((row, i), kept)| {
                noise.partners.clear();
                let mut last: Option<(&[u32], f64)> = None;
                if let Some(kept) = kept.as_mut() {
                    kept.resize(n, KeptRestrictiveness::default());
                }
                for (j, out) in row.iter_mut().enumerate() {
                    if j == i || !view.chilled(j, i) {
                        continue;
                    }
                    let list = view.pair_regimes(j, i);
                    let r = match last {
                        Some((l, r)) if l == list => r,
                        _ => {
                            let r = match kept.as_mut() {
                                Some(kept) => {
                                    let at = &mut kept[j];
                                    view.restrictiveness_kept(sc, (j, i), at, scratch)
                                }
                                None => view.restrictiveness_with(sc, j, i, scratch),
                            };
                            last = Some((list, r));
                            r
                        }
                    };
                    if r == 0.0 || sd == 0.0 {
                        *out = r.min(1.0);
                    } else {
                        // R^_ji = min(1, R_ji exp(sd z - sd^2 / 2)), below.
                        *out = r;
                        noise.partners.push(j as u32);
                    }
                }
                if !noise.partners.is_empty() {
                    noise.perceive(sc.seed, replication, (t, i as u32), sd, row);
                }
            },
        );
    let zeros = vec![0.0; n];
    let perceived_by = |i: usize| -> &[f64] {
        match row_of[i] {
            NONE => &zeros,
            r => &perceived[r as usize * n..(r as usize + 1) * n],
        }
    };
    let initial = tp.initial.as_standard_layout();
    let initial = initial.as_slice().expect("standard layout");
    trust
        .as_slice_mut()
        .expect("built in standard layout")
        .par_chunks_mut(n.max(1))
        .zip(initial.par_chunks(n.max(1)))
        .zip(unsettled.par_iter_mut())
        .zip(touched.par_iter_mut())
        .enumerate()
        .for_each(|(i, (((trust, initial), unsettled), touched))| {
            *touched = row_of[i] != NONE || *unsettled;
            if !*touched {
                return;
            }
            // Every j in one vector loop, then i's own entry put back.
            let own = trust[i];
            for ((cur, &t0), &r) in trust.iter_mut().zip(initial).zip(perceived_by(i)) {
                *cur = (*cur + tp.recovery * (t0 - *cur) - tp.erosion * r).clamp(0.0, 1.0);
            }
            trust[i] = own;
            *unsettled = trust.iter().zip(initial).any(|(x, t0)| x != t0);
        });
    if !tp.retaliation {
        return Vec::new();
    }
    // Each row's decisions by j, the rows in parallel, gathered by i: the
    // same decisions in the same order as one pass over the rows.
    let rows: Vec<Vec<Retaliation>> = row_of
        .par_iter()
        .enumerate()
        .map(|(i, &perceiving_row)| {
            let mut decided = Vec::new();
            // Opening needs R^_ji > theta >= 0, so a perceiving row;
            // lifting needs a counter-regime.
            let slots = i * n..(i + 1) * n;
            if perceiving_row == NONE && retaliating[slots.clone()].iter().all(|&r| r == NONE) {
                return decided;
            }
            let theta = sc.world.countries[i].retaliation_threshold;
            // Row i of R^, of trust and of the counter-regimes, by j.
            let row = perceived_by(i)
                .iter()
                .zip(trust.row(i))
                .zip(&retaliating[slots]);
            for (j, ((&r_hat, &trust), &counter)) in row.enumerate() {
                if i == j {
                    continue;
                }
                if counter == NONE {
                    if r_hat > theta
                        && trust < tp.min_trust
                        && let Some(regime) = counter_regime(sc, view, regimes, i, j, t)
                    {
                        decided.push(Retaliation::Open { i, j, regime });
                    }
                } else if r_hat < theta / 2.0 && trust >= tp.min_trust {
                    let regime = counter as usize;
                    decided.push(Retaliation::Lift { i, j, regime });
                }
            }
            decided
        })
        .collect();
    rows.into_iter().flatten().collect()
}

/// The perception noise of one perceiving row (MODEL.md section 4), made
/// for all its noisy partners at once: their N(0,1) draws' uniforms are
/// read from the row's stream (partner j's at word 4 j, as
/// [`rng::normal`] reads them), then the log-normal factors are computed
/// over the lanes of a vector ([`vmath::lognormal_noise`]: the same bits
/// as `libm::exp(sd * rng::normal(..) - sd * sd / 2.0)` one partner at a
/// time, which took 3.2% of medium_policy.toml's samples).
#[derive(Default)]
struct NoiseScratch {
    /// The partners j whose R_ji is positive, ascending.
    partners: Vec<u32>,
    u1: Vec<f64>,
    u2: Vec<f64>,
    factors: Vec<f64>,
}

impl NoiseScratch {
    /// Multiply `row`'s R_ji at [`Self::partners`] by their factors,
    /// capped at 1: R^_ji. `at`: (step, perceiving country).
    fn perceive(&mut self, seed: u64, replication: u32, at: (u32, u32), sd: f64, row: &mut [f64]) {
        let (t, i) = at;
        let mut stream = rng::stream(seed, replication, Purpose::Perception, t, i);
        self.u1.clear();
        self.u2.clear();
        for &j in &self.partners {
            rng::seek(&mut stream, 4 * u128::from(j));
            let (u1, u2) = rng::normal_uniforms(&mut stream);
            self.u1.push(u1);
            self.u2.push(u2);
        }
        self.factors.resize(self.partners.len(), 0.0);
        vmath::lognormal_noise(&self.u1, &self.u2, sd, &mut self.factors);
        for (&j, &f) in self.partners.iter().zip(&self.factors) {
            let r = &mut row[j as usize];
            *r = (*r * f).min(1.0);
        }
    }
}

/// i's counter-regime against j, mirroring the regimes that restrict j -> i.
fn counter_regime(
    sc: &Scenario,
    view: &PolicyView,
    regimes: &[ExportControl],
    i: usize,
    j: usize,
    t: u32,
) -> Option<ExportControl> {
    let list = view.pair_regimes(j, i);
    if list.is_empty() {
        return None;
    }
    let mut sectors = Vec::new();
    for s in 0..sc.sectors.len() {
        let largest = list
            .iter()
            .map(|&a| view.eff(a as usize, s))
            .fold(0.0, f64::max);
        let scope = (sc.trust.reciprocity * largest).min(1.0);
        if scope > 0.0 {
            sectors.push((s, scope));
        }
    }
    // A counter-regime that would cover nothing (reciprocity 0) is not a
    // retaliation at all.
    if sectors.is_empty() {
        return None;
    }
    let regs = list
        .iter()
        .map(|&a| &regimes[view.active[a as usize] as usize]);
    let licence_rate = regs
        .clone()
        .map(|r| r.licence_rate)
        .fold(f64::INFINITY, f64::min);
    let cost = regs.map(|r| r.cost).fold(0.0, f64::max);
    let codes = &sc.world.countries;
    let mut controllers = vec![false; view.n];
    controllers[i] = true;
    let mut targets = vec![false; view.n];
    targets[j] = true;
    Some(ExportControl {
        name: format!("retaliation_{}_{}_{t}", codes[i].code, codes[j].code),
        controllers,
        targets,
        sectors,
        licence_rate,
        cost,
        start: t + 1,
        end: None,
        extraterritorial: false,
        schedule: Vec::new(),
    })
}
