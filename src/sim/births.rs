//! Births (MODEL.md section 2): each country's innovations of a step,
//! their sectors, values, scope draws and co-inventors, drawn from the
//! country's own stream while the rows diffuse.

use ndarray::Array2;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::Variant;
use super::policy::{self, PolicyView};
use super::rows::NONE;
use crate::dist;
use crate::model::Scenario;
use crate::rng::{self, Purpose};

/// One innovation born at a step, before it is given its index and row.
pub(super) struct Birth {
    pub(super) sector: usize,
    /// The inventing country.
    pub(super) origin: usize,
    /// The foreign co-inventor, or `NONE`.
    pub(super) coinventor: u32,
    /// Its value: the sector's weight times q_k, its exponential quality
    /// draw (MODEL.md section 2).
    pub(super) value: f64,
    /// Its scope draw: regimes with scope above it cover it.
    pub(super) u: f64,
}

/// g_i * rd_i * exp(phi * (l_i - l*)) for every country, l* = max_j l_j.
pub(super) fn arrival_intensities(sc: &Scenario, log_prod: &[f64]) -> Vec<f64> {
    let phi = sc.innovation.knowledge_elasticity;
    // l* here is the best current level (MODEL.md section 2), not the
    // frontier of section 6.
    let best = log_prod.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    sc.world
        .countries
        .iter()
        .zip(log_prod)
        .map(|(c, &l)| {
            let tilt = if phi == 0.0 {
                1.0
            } else {
                libm::exp(phi * (l - best))
            };
            c.gdp * c.rd * tilt
        })
        .collect()
}

/// What the births of a step read (MODEL.md section 2): last step's log
/// productivity and trust, and this step's policy view. Births do not
/// depend on this step's adoptions, so they are drawn while the rows
/// diffuse.
pub(super) struct Arrivals<'s> {
    pub(super) sc: &'s Scenario,
    pub(super) replication: u32,
    pub(super) variant: Variant,
    pub(super) lambda: f64,
    pub(super) q0: f64,
    pub(super) log_prod: &'s [f64],
    pub(super) trust: &'s Array2<f64>,
    pub(super) view: &'s PolicyView,
    pub(super) partners: &'s [Vec<u32>],
    pub(super) sector_epoch: &'s [u64],
    /// Compare every use of kept partner weights with weights computed
    /// afresh (slow; for tests).
    pub(super) verify: bool,
}

/// A country's co-invention partner weights per sector (see
/// [`Arrivals::partner_weights`]), computed when first needed and kept
/// while what they read stays the same: the passable shares H while the
/// sector's part of the policy view does ([`super::Simulation::sector_epoch`]),
/// the weights while those shares and the country's row of trust (bits)
/// do. In the counterfactual nothing moves, so they are computed once a
/// run.
#[derive(Debug, Clone, Default)]
pub(super) struct PartnerCache {
    trust: Vec<f64>,
    by_sector: Vec<Option<KeptPartners>>,
}

/// One sector's part of a [`PartnerCache`].
#[derive(Debug, Clone)]
struct KeptPartners {
    /// The sector's epoch the shares were computed at.
    epoch: u64,
    /// H_ij,s by partner.
    h: Vec<f64>,
    /// The weights v_ij by partner and their sum, from `h` and the kept
    /// row of trust.
    v: Option<(Vec<f64>, f64)>,
}

impl Arrivals<'_> {
    /// Births of step t (MODEL.md section 2). Countries draw from their own
    /// streams, so they are handled in parallel and joined in country order.
    pub(super) fn births(&self, t: u32, cache: &mut [PartnerCache]) -> Vec<Birth> {
        let intensity = arrival_intensities(self.sc, self.log_prod);
        let shares: Vec<f64> = self.sc.sectors.iter().map(|s| s.share).collect();
        let per_country: Vec<Vec<Birth>> = cache
            .par_iter_mut()
            .enumerate()
            .map(|(i, c)| self.births_of(t, i, self.lambda * intensity[i], &shares, c))
            .collect();
        per_country.into_iter().flatten().collect()
    }

    /// Country i's births at step t, given its arrival rate, the sectors'
    /// shares of innovations (used unless it has its own) and its partner
    /// weights kept so far.
    fn births_of(
        &self,
        t: u32,
        i: usize,
        rate: f64,
        sector_shares: &[f64],
        cache: &mut PartnerCache,
    ) -> Vec<Birth> {
        let sc = self.sc;
        let coop = &sc.cooperation;
        let mut out = Vec::new();
        if rate <= 0.0 {
            return out;
        }
        let mut stream = rng::stream(sc.seed, self.replication, Purpose::Arrival, t, i as u32);
        let count = dist::poisson(&mut stream, rate);
        let country = &sc.world.countries[i];
        let shares = country.specialization.as_deref().unwrap_or(sector_shares);
        if count > 0 {
            let trust = self.trust.row(i);
            let same = cache.trust.len() == trust.len()
                && cache
                    .trust
                    .iter()
                    .zip(trust)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            cache.by_sector.resize(sc.sectors.len(), None);
            if !same {
                cache.trust = trust.to_vec();
                for kept in cache.by_sector.iter_mut().flatten() {
                    kept.v = None;
                }
            }
        }
        for _ in 0..count {
            let s = rng::weighted_index(shares, 1.0, rng::uniform(&mut stream));
            let q = self.q0 * sc.sectors[s].step_scale * rng::exp1(&mut stream);
            let u = rng::uniform(&mut stream);
            let u_coinvent = rng::uniform(&mut stream);
            let u_partner = rng::uniform(&mut stream);
            let epoch = self.sector_epoch[s];
            let kept = match &mut cache.by_sector[s] {
                Some(kept) if kept.epoch == epoch => kept,
                slot => slot.insert(KeptPartners {
                    epoch,
                    h: self.passable_shares(i, s),
                    v: None,
                }),
            };
            let (v, total) = &*kept.v.get_or_insert_with(|| self.weights_from(i, &kept.h));
            if self.verify {
                let (fresh, fresh_total) = self.partner_weights(i, s);
                assert!(
                    total.to_bits() == fresh_total.to_bits()
                        && v.iter()
                            .zip(&fresh)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "step {t}: kept partner weights of country {i}, sector {s} are stale"
                );
            }
            let boost = if coop.positive_list[s] {
                1.0 + coop.incentive
            } else {
                1.0
            };
            let p = (country.openness * sc.innovation.coinvention * boost * *total).min(1.0);
            let coinventor = if u_coinvent < p && *total > 0.0 {
                let partners = self.partners[i].iter().map(|&j| j as usize);
                rng::weighted_pick(partners.zip(v.iter().copied()), *total, u_partner) as u32
            } else {
                NONE
            };
            out.push(Birth {
                sector: s,
                origin: i,
                coinventor,
                value: sc.sectors[s].weight * q,
                u,
            });
        }
        out
    }

    /// v_ij = w~_ij * T_ij * H_ij,s over i's partners j (`partners[i]`),
    /// and their sum (the same as over every country: the others' terms
    /// are zeros).
    fn partner_weights(&self, i: usize, s: usize) -> (Vec<f64>, f64) {
        self.weights_from(i, &self.passable_shares(i, s))
    }

    /// v_ij = w~_ij * T_ij * H_ij,s over i's partners j from their shares
    /// H (`h`, by partner), and their sum.
    fn weights_from(&self, i: usize, h: &[f64]) -> (Vec<f64>, f64) {
        let v: Vec<f64> = self.partners[i]
            .iter()
            .zip(h)
            .map(|(&j, &h)| {
                let j = j as usize;
                self.sc.world.contact_share[[i, j]] * self.trust[[i, j]] * h
            })
            .collect();
        let total = v.iter().sum();
        (v, total)
    }

    /// H_ij,s over i's partners j (`partners[i]`).
    fn passable_shares(&self, i: usize, s: usize) -> Vec<f64> {
        let sc = self.sc;
        let coop = &sc.cooperation;
        let chill = 1.0 - coop.chilling * sc.sectors[s].sensitivity * coop.uncertainty();
        let chill_of = |x: usize, y: usize| {
            if self.variant == Variant::Policy && !coop.positive_list[s] && self.view.chilled(x, y)
            {
                chill
            } else {
                1.0
            }
        };
        // H depends on the pair only through the regimes restricting each
        // direction (chilling included), so each distinct pair of lists is
        // evaluated once. Consecutive partners often share their lists (the
        // last pair met is tried first); counter-regimes make many lists
        // unique, so the others are found by hash, not by a scan.
        // The lists restricting i -> j and j -> i.
        type Lists<'v> = (&'v [u32], &'v [u32]);
        let mut known: FxHashMap<Lists<'_>, f64> =
            FxHashMap::with_capacity_and_hasher(self.partners[i].len(), Default::default());
        let mut last: Option<(Lists<'_>, f64)> = None;
        let mut scratch = policy::RestrictScratch::default();
        self.partners[i]
            .iter()
            .map(|&j| {
                let j = j as usize;
                if self.view.chilled(i, j) || self.view.chilled(j, i) {
                    let lists = (self.view.pair_regimes(i, j), self.view.pair_regimes(j, i));
                    match last {
                        Some((l, h)) if l == lists => h,
                        _ => {
                            let h = *known.entry(lists).or_insert_with(|| {
                                let chills = (chill_of(i, j), chill_of(j, i));
                                let view = &self.view;
                                view.passable_with((i, j, s), chills, &mut scratch)
                            });
                            last = Some((lists, h));
                            h
                        }
                    }
                } else {
                    1.0
                }
            })
            .collect()
    }
}
