//! The policy as it stands at one step (MODEL.md section 3): which regimes are
//! active and what they cover after the prohibited zone and the positive list,
//! which directed pairs they restrict, the gate classes ("keys") innovations
//! fall into, restrictiveness R_ji and the two-way passable share H_ij,s.

use rustc_hash::FxHashMap;
use smallvec::{SmallVec, smallvec};
use std::sync::Arc;

use crate::model::{ExportControl, Scenario};

/// The effective scopes of the active regimes at one step.
#[derive(Debug, Clone, Default)]
pub struct PolicyView {
    /// Global indices of regimes active at this step that cover at least one
    /// sector after the prohibited zone and the positive list.
    pub active: Vec<u32>,
    /// `eff[a * sectors + s]`: effective scope of active regime `active[a]`
    /// in sector s ([`Self::eff`]), one row per active regime.
    pub eff: Vec<f64>,
    /// `gate[a]`: the gate of active regime `active[a]`
    /// ([`ExportControl::gate`]), kept beside `eff` so that a pair's lists
    /// read no regime.
    pub gate: Vec<f64>,
    /// Number of sectors (the length of a row of `eff`).
    pub sectors: usize,
    /// `since[a]`: the first step of the run of steps through which
    /// regime `active[a]` has been active with these effective scopes (bit
    /// for bit, as far back as the views this one was built from). A
    /// regime's scopes at a step depend only on the regime and the step,
    /// so (regime, since) names its scopes: see [`KeptRestrictiveness`].
    pub since: Vec<u32>,
    /// Per sector: ascending distinct positive effective scopes; bucket b
    /// of a sector holds the control draws u with `breakpoints[b - 1] <=
    /// u < breakpoints[b]` (see [`Self::cover`]).
    pub breakpoints: Vec<Vec<f64>>,
    /// CSR over directed pairs j -> i at index i * n + j: positions into
    /// `active` of the regimes with j as controller and i as target
    /// (shared by the views of steps with the same regimes active).
    pub pair_start: Arc<[u32]>,
    pub pair_list: Arc<[u32]>,
    /// Per country: controller of some active covering regime.
    pub controllers: Vec<bool>,
    /// Per country: target of some active covering regime.
    pub affected: Vec<bool>,
    /// Per sector: largest effective scope (the controlled share's threshold).
    pub max_scope: Vec<f64>,
    pub n: usize,
}

impl PolicyView {
    /// The view with no regime at all (the counterfactual).
    pub fn empty(n: usize, sectors: usize) -> PolicyView {
        PolicyView::blank(n, sectors, vec![0; n * n + 1].into())
    }

    /// The view with no regime, with `pair_start` as its pair index.
    fn blank(n: usize, sectors: usize, pair_start: Arc<[u32]>) -> PolicyView {
        PolicyView {
            sectors,
            breakpoints: vec![Vec::new(); sectors],
            pair_start,
            controllers: vec![false; n],
            affected: vec![false; n],
            max_scope: vec![0.0; sectors],
            n,
            ..Default::default()
        }
    }

    /// The view at `step`. `members[r]`: regime r's controllers and its
    /// targets, ascending (the same as its flags, as lists). `prev`, the
    /// view of an earlier step (or an empty default), lends its restricted
    /// pairs when the same regimes are in force (schedules move scopes, not
    /// pairs).
    pub fn build(
        sc: &Scenario,
        regimes: &[ExportControl],
        members: &[(Vec<u32>, Vec<u32>)],
        step: u32,
        prev: &PolicyView,
    ) -> PolicyView {
        debug_assert_eq!(members.len(), regimes.len());
        let n = sc.world.len();
        let s_count = sc.sectors.len();
        // The pair index is lent by `prev` when it fits (replaced below
        // unless the same regimes are active).
        let start = if prev.n == n {
            Arc::clone(&prev.pair_start)
        } else {
            vec![0; n * n + 1].into()
        };
        let mut view = PolicyView::blank(n, s_count, start);
        let mut eff = vec![0.0; s_count];
        for (r, reg) in regimes.iter().enumerate() {
            if !reg.is_active(step) {
                continue;
            }
            eff.fill(0.0);
            for &(s, base) in &reg.sectors {
                if sc.controllable(s) {
                    eff[s] = reg.scheduled_scope(base, step);
                }
            }
            if eff.iter().any(|&x| x > 0.0) {
                view.active.push(r as u32);
                view.eff.extend_from_slice(&eff);
                view.gate.push(reg.gate());
            }
        }
        // Both lists of active regimes ascend: a regime's place in `prev`
        // is found by walking it alongside.
        let mut p = 0;
        view.since = view
            .active
            .iter()
            .zip(view.rows())
            .map(|(&r, e)| {
                while p < prev.active.len() && prev.active[p] < r {
                    p += 1;
                }
                let same = p < prev.since.len()
                    && prev.active[p] == r
                    && prev.eff[p * s_count..(p + 1) * s_count]
                        .iter()
                        .zip(e)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                if same { prev.since[p] } else { step }
            })
            .collect();
        for s in 0..s_count {
            let mut bp: Vec<f64> = view.rows().map(|e| e[s]).filter(|&x| x > 0.0).collect();
            bp.sort_by(f64::total_cmp);
            bp.dedup();
            view.max_scope[s] = bp.last().copied().unwrap_or(0.0);
            view.breakpoints[s] = bp;
        }
        if prev.n == n && prev.active == view.active {
            view.pair_list = Arc::clone(&prev.pair_list);
            view.controllers.clone_from(&prev.controllers);
            view.affected.clone_from(&prev.affected);
            return view;
        }
        // Directed pairs restricted by each active regime, as CSR by pair
        // (a counting sort: filled in ascending `a`, so each pair's list is
        // ascending).
        let pairs_of = |a: usize| {
            let (ctrl, targets) = &members[view.active[a] as usize];
            targets
                .iter()
                .flat_map(move |&i| ctrl.iter().map(move |&j| i as usize * n + j as usize))
        };
        let mut start = vec![0u32; n * n + 1];
        for a in 0..view.active.len() {
            for p in pairs_of(a) {
                start[p + 1] += 1;
            }
        }
        for p in 0..n * n {
            start[p + 1] += start[p];
        }
        let mut fill = start.clone();
        let mut list = vec![0u32; start[n * n] as usize];
        for a in 0..view.active.len() {
            for p in pairs_of(a) {
                list[fill[p] as usize] = a as u32;
                fill[p] += 1;
            }
            let (ctrl, targets) = &members[view.active[a] as usize];
            for &i in targets {
                view.affected[i as usize] = true;
            }
            for &j in ctrl {
                view.controllers[j as usize] = true;
            }
        }
        view.pair_list = list.into();
        view.pair_start = start.into();
        view
    }

    /// Per sector, the control draws whose covering regimes differ from
    /// those of `prev`: disjoint half-open intervals [lo, hi), ascending
    /// (none: the sector has the same buckets and covering regimes, bit
    /// for bit). A draw u is covered by regime r exactly when u < r's
    /// effective scope (0 where r is inactive or does not cover the
    /// sector), so r changes the cover of the draws between its old and
    /// its new scope and of no other. An innovation whose draw lies
    /// outside every interval keeps its gate class (regimes are only ever
    /// appended, and a regime's members and reach never change).
    pub fn scope_changes(&self, prev: &PolicyView) -> Vec<Vec<(f64, f64)>> {
        fn covering(v: &PolicyView, s: usize) -> impl Iterator<Item = (u32, f64)> + '_ {
            v.active
                .iter()
                .zip(v.rows())
                .filter(move |(_, e)| e[s] > 0.0)
                .map(move |(&r, e)| (r, e[s]))
        }
        (0..self.breakpoints.len())
            .map(|s| {
                // Both lists ascend by regime: merge them.
                let mut moved: Vec<(f64, f64)> = Vec::new();
                let mut note = |a: f64, b: f64| {
                    if a.to_bits() != b.to_bits() {
                        moved.push((a.min(b), a.max(b)));
                    }
                };
                let (mut old, mut new) =
                    (covering(prev, s).peekable(), covering(self, s).peekable());
                loop {
                    match (old.peek().copied(), new.peek().copied()) {
                        (None, None) => break,
                        (Some((ro, eo)), Some((rn, en))) if ro == rn => {
                            note(eo, en);
                            old.next();
                            new.next();
                        }
                        (Some((ro, eo)), Some((rn, _))) if ro < rn => {
                            note(eo, 0.0);
                            old.next();
                        }
                        (Some((_, eo)), None) => {
                            note(eo, 0.0);
                            old.next();
                        }
                        (_, Some((_, en))) => {
                            note(0.0, en);
                            new.next();
                        }
                    }
                }
                moved.sort_by(|x, y| x.0.total_cmp(&y.0));
                let mut merged: Vec<(f64, f64)> = Vec::with_capacity(moved.len());
                for (lo, hi) in moved {
                    match merged.last_mut() {
                        Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                        _ => merged.push((lo, hi)),
                    }
                }
                merged
            })
            .collect()
    }

    /// The effective scope of active regime `active[a]` in sector s.
    #[inline]
    pub fn eff(&self, a: usize, s: usize) -> f64 {
        self.eff[a * self.sectors + s]
    }

    /// The rows of effective scopes, one per active regime, in the order of
    /// `active`.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.eff.chunks_exact(self.sectors.max(1))
    }

    /// Positions into `active` of the regimes restricting j -> i.
    #[inline]
    pub fn pair_regimes(&self, j: usize, i: usize) -> &[u32] {
        let p = i * self.n + j;
        &self.pair_list[self.pair_start[p] as usize..self.pair_start[p + 1] as usize]
    }

    /// Is the pair j -> i chilled (some active covering regime has j as
    /// controller and i as target)?
    #[inline]
    pub fn chilled(&self, j: usize, i: usize) -> bool {
        let p = i * self.n + j;
        self.pair_start[p] != self.pair_start[p + 1]
    }

    /// The active regimes (global ids, ascending) covering the innovations
    /// of sector s whose control draw falls in bucket b (none in the last
    /// bucket, above every scope). Made on demand: with retaliation on,
    /// thousands of counter-regimes are active, and most steps place only
    /// a few buckets' innovations afresh.
    pub fn cover(&self, s: usize, b: usize) -> Vec<u32> {
        let Some(&low) = self.breakpoints[s].get(b) else {
            return Vec::new();
        };
        self.active
            .iter()
            .zip(self.rows())
            .filter(|(_, e)| e[s] >= low)
            .map(|(&r, _)| r)
            .collect()
    }

    /// Bucket of a control draw u in sector s.
    #[inline]
    pub fn bucket(&self, s: usize, u: f64) -> usize {
        self.breakpoints[s].partition_point(|&x| x <= u)
    }

    /// The (scope, gate) pairs of the regimes restricting j -> i in sector
    /// s, into `out` (cleared first).
    fn direction_into(&self, j: usize, i: usize, s: usize, out: &mut Vec<(f64, f64)>) {
        out.clear();
        for &a in self.pair_regimes(j, i) {
            let e = self.eff(a as usize, s);
            if e > 0.0 {
                out.push((e, self.gate[a as usize]));
            }
        }
    }

    /// H_ij,s: the expected share of sector s's items that pass both ways
    /// between i and j, each direction's chilling factor (`chill_ij`,
    /// `chill_ji`) applying where no regime covers an item
    /// ([`expected_product`] of the two directions, without allocating once
    /// `scratch` has grown).
    pub fn passable_with(
        &self,
        (i, j, s): (usize, usize, usize),
        (chill_ij, chill_ji): (f64, f64),
        scratch: &mut RestrictScratch,
    ) -> f64 {
        self.direction_into(i, j, s, &mut scratch.direction);
        self.direction_into(j, i, s, &mut scratch.back);
        expected_product(&scratch.direction, chill_ij, &scratch.back, chill_ji)
    }

    /// R_ji: weighted mean over sectors (weights omega) of the expected share
    /// of items on j -> i held back by the regimes with j as controller.
    pub fn restrictiveness(&self, sc: &Scenario, j: usize, i: usize) -> f64 {
        self.restrictiveness_with(sc, j, i, &mut RestrictScratch::default())
    }

    /// [`Self::restrictiveness`] with its working lists in `scratch`
    /// (the same bits, without allocating once the lists have grown).
    pub fn restrictiveness_with(
        &self,
        sc: &Scenario,
        j: usize,
        i: usize,
        scratch: &mut RestrictScratch,
    ) -> f64 {
        if !self.chilled(j, i) {
            return 0.0;
        }
        self.lists_into(sc, j, i, scratch);
        // What R depends on, as bits: the sector weights, then per weighted
        // sector a separator (a NaN, which no scope or gate is) and its
        // (scope, gate) list in list order.
        let RestrictScratch { lists, at, key, .. } = scratch;
        key.clear();
        key.extend(sc.sectors.iter().map(|s| s.weight.to_bits()));
        for w in at.windows(2) {
            key.push(SEPARATOR);
            key.extend(
                lists[w[0]..w[1]]
                    .iter()
                    .flat_map(|&(e, g)| [e.to_bits(), g.to_bits()]),
            );
        }
        KNOWN_R.with_borrow_mut(|known| {
            if let Some(&r) = known.get(key.as_slice()) {
                return r;
            }
            let r = restrictiveness_of(sc, lists, at);
            if known.len() >= KNOWN_R_MAX {
                known.clear();
            }
            known.insert(key.as_slice().into(), r);
            r
        })
    }

    /// [`Self::restrictiveness_with`] computed afresh, never taken from
    /// the values this thread remembers (for checks).
    fn restrictiveness_fresh(
        &self,
        sc: &Scenario,
        j: usize,
        i: usize,
        scratch: &mut RestrictScratch,
    ) -> f64 {
        if !self.chilled(j, i) {
            return 0.0;
        }
        self.lists_into(sc, j, i, scratch);
        restrictiveness_of(sc, &scratch.lists, &scratch.at)
    }

    /// The (scope, gate) lists of the regimes restricting j -> i in each
    /// weighted sector, one after another in `scratch.lists`; the q-th
    /// weighted sector's are `lists[at[q]..at[q + 1]]`.
    fn lists_into(&self, sc: &Scenario, j: usize, i: usize, scratch: &mut RestrictScratch) {
        let RestrictScratch {
            direction,
            lists,
            at,
            ..
        } = scratch;
        lists.clear();
        at.clear();
        at.push(0);
        for (s, sector) in sc.sectors.iter().enumerate() {
            if sector.weight != 0.0 {
                self.direction_into(j, i, s, direction);
                lists.extend_from_slice(direction);
                at.push(lists.len());
            }
        }
    }
}

/// R from the weighted sectors' lists of [`PolicyView::lists_into`]: the
/// weighted mean over sectors of the expected share held back.
fn restrictiveness_of(sc: &Scenario, lists: &[(f64, f64)], at: &[usize]) -> f64 {
    let total_w: f64 = sc.sectors.iter().map(|s| s.weight).sum();
    if total_w <= 0.0 {
        return 0.0;
    }
    let mut acc = 0.0;
    let weighted = sc.sectors.iter().filter(|s| s.weight != 0.0);
    for (sector, w) in weighted.zip(at.windows(2)) {
        let direction = &lists[w[0]..w[1]];
        if !direction.is_empty() {
            let e = expected_product(direction, 1.0, &[], 1.0);
            acc += sector.weight * (1.0 - e);
        }
    }
    acc / total_w
}

/// Regimes a [`KeptRestrictiveness`] remembers at most (longer lists are
/// computed every time).
const KEPT: usize = 3;

/// R_ji of one pair as last computed, with the regimes it was computed
/// from: each named by its global id and the first step of its scopes
/// ([`PolicyView::since`]). R_ji depends only on those regimes' scopes and
/// gates, in list order, so while the pair's list names the same regimes
/// with the same `since`, the kept value is the one a fresh computation
/// would give, bit for bit (counter-regimes never move; scheduled regimes
/// move while their schedule ramps).
#[derive(Debug, Clone, Copy)]
pub struct KeptRestrictiveness {
    /// Regimes in the list; `u8::MAX`: nothing kept.
    len: u8,
    regime: [u32; KEPT],
    since: [u32; KEPT],
    r: f64,
}

impl Default for KeptRestrictiveness {
    fn default() -> Self {
        KeptRestrictiveness {
            len: u8::MAX,
            regime: [0; KEPT],
            since: [0; KEPT],
            r: 0.0,
        }
    }
}

impl PolicyView {
    /// [`PolicyView::restrictiveness_with`], taken from `kept` when it
    /// was computed from the same regimes with the same scopes, else
    /// computed and kept (lists of up to `KEPT` regimes).
    pub fn restrictiveness_kept(
        &self,
        sc: &Scenario,
        (j, i): (usize, usize),
        kept: &mut KeptRestrictiveness,
        scratch: &mut RestrictScratch,
    ) -> f64 {
        let list = self.pair_regimes(j, i);
        let keeps = list.len() <= KEPT;
        if keeps
            && usize::from(kept.len) == list.len()
            && list.iter().enumerate().all(|(q, &a)| {
                kept.regime[q] == self.active[a as usize] && kept.since[q] == self.since[a as usize]
            })
        {
            debug_assert_eq!(
                kept.r.to_bits(),
                self.restrictiveness_fresh(sc, j, i, scratch).to_bits(),
                "R of {j} -> {i} kept from the same regimes and scopes"
            );
            return kept.r;
        }
        let r = self.restrictiveness_with(sc, j, i, scratch);
        if keeps {
            kept.len = list.len() as u8;
            for (q, &a) in list.iter().enumerate() {
                kept.regime[q] = self.active[a as usize];
                kept.since[q] = self.since[a as usize];
            }
            kept.r = r;
        }
        r
    }
}

/// Working lists of [`PolicyView::restrictiveness_with`] and
/// [`PolicyView::passable_with`], kept by a caller that evaluates many
/// pairs.
#[derive(Debug, Default)]
pub struct RestrictScratch {
    direction: Vec<(f64, f64)>,
    back: Vec<(f64, f64)>,
    /// A pair's lists by weighted sector (see [`PolicyView::lists_into`]),
    /// and what its R depends on, as bits (see [`KNOWN_R`]).
    lists: Vec<(f64, f64)>,
    at: Vec<usize>,
    key: Vec<u64>,
}

/// Separates the sectors' lists in an R's key: a NaN, which no scope or
/// gate is.
const SEPARATOR: u64 = u64::MAX;

/// The most values of R a thread remembers (about 100 bytes each); all are
/// forgotten when it is reached.
const KNOWN_R_MAX: usize = 4096;

thread_local! {
    /// Values of R_ji this thread has computed, by what they depend on
    /// (a [`RestrictScratch`] key): the sector weights and, per sector, the
    /// (scope, gate) list of the regimes restricting j -> i, in list order.
    /// R is a function of these bits alone, so a value found here is the
    /// one a fresh computation gives, bit for bit, whatever scenario or
    /// pair asked first. With retaliation, thousands of pairs each have a
    /// counter-regime of their own, so their lists differ while what they
    /// hold repeats: in medium_policy.toml some 1,200 pairs a step whose
    /// scheduled regimes moved share some 70 keys.
    static KNOWN_R: std::cell::RefCell<FxHashMap<Box<[u64]>, f64>> =
        std::cell::RefCell::new(FxHashMap::default());
}

/// Forget every value of R this thread remembers (tests).
#[cfg(test)]
pub fn forget_restrictiveness() {
    KNOWN_R.with_borrow_mut(|known| known.clear());
}

/// E_u[f_a(u) f_b(u)], u ~ U[0,1), where f(u) is the product of the gates of
/// the listed (scope, gate) regimes with scope > u, or `chill` when none
/// covers u. Exact: f is piecewise constant between scopes.
pub fn expected_product(a: &[(f64, f64)], chill_a: f64, b: &[(f64, f64)], chill_b: f64) -> f64 {
    // The breakpoints 0, 1 and every scope, ascending and distinct: each
    // inserted in place (scopes are in (0, 1], never NaN; the lists hold a
    // few regimes, so the breakpoints stay on the stack).
    let mut points: SmallVec<[f64; 16]> = smallvec![0.0, 1.0];
    for &(x, _) in a.iter().chain(b) {
        let at = points.partition_point(|&p| p < x);
        if points.get(at) != Some(&x) {
            points.insert(at, x);
        }
    }
    let f = |list: &[(f64, f64)], chill: f64, u: f64| {
        let mut covered = false;
        let mut g = 1.0;
        for &(scope, gate) in list {
            if u < scope {
                covered = true;
                g *= gate;
            }
        }
        if covered { g } else { chill }
    };
    let mut total = 0.0;
    for w in points.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        if hi > lo {
            total += (hi - lo) * f(a, chill_a, lo) * f(b, chill_b, lo);
        }
    }
    total
}

/// A gate class: innovations of one sector covered by the same regimes, with
/// the same extraterritorial regimes applying through their origin. Every
/// innovation of a class passes every pair with the same gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyDesc {
    pub sector: u32,
    pub cover: Vec<u32>,
    /// The extraterritorial regimes in `cover` whose controllers include the
    /// innovation's origin.
    pub ext: Vec<u32>,
}

/// Interns gate classes for a whole run, so a class keeps its id across
/// steps and "same id" means "same gates".
#[derive(Debug, Default)]
pub struct KeyInterner {
    ids: FxHashMap<KeyDesc, u32>,
    pub descs: Vec<KeyDesc>,
}

impl KeyInterner {
    pub fn intern(&mut self, d: KeyDesc) -> u32 {
        if let Some(&id) = self.ids.get(&d) {
            return id;
        }
        let id = self.descs.len() as u32;
        self.descs.push(d.clone());
        self.ids.insert(d, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The breakpoints as first written: sorted in full, then deduplicated.
    fn expected_product_sorted(a: &[(f64, f64)], ca: f64, b: &[(f64, f64)], cb: f64) -> f64 {
        let mut points: Vec<f64> = a.iter().chain(b).map(|p| p.0).collect();
        points.extend([0.0, 1.0]);
        points.sort_by(f64::total_cmp);
        points.dedup();
        let f = |list: &[(f64, f64)], chill: f64, u: f64| {
            let covered: Vec<f64> = list.iter().filter(|p| u < p.0).map(|p| p.1).collect();
            if covered.is_empty() {
                chill
            } else {
                covered.iter().fold(1.0, |g, &x| g * x)
            }
        };
        let mut total = 0.0;
        for w in points.windows(2) {
            total += (w[1] - w[0]) * f(a, ca, w[0]) * f(b, cb, w[0]);
        }
        total
    }

    /// Scopes in (0, 1], often repeated (regimes of one schedule) or 1.
    fn regime() -> impl Strategy<Value = (f64, f64)> {
        let scope = prop_oneof![(1u32..=8).prop_map(|k| f64::from(k) / 8.0), (1e-9..=1.0f64),];
        (scope, 0.0..=1.0f64)
    }

    proptest! {
        /// Breakpoints inserted in place give the same bits as sorting them,
        /// on the stack and, past 16 breakpoints, on the heap.
        #[test]
        fn breakpoints_in_place_give_the_sorted_bits(
            a in proptest::collection::vec(regime(), 0..10),
            b in proptest::collection::vec(regime(), 0..10),
            ca in 0.0..=1.0f64,
            cb in 0.0..=1.0f64,
        ) {
            let fast = expected_product(&a, ca, &b, cb);
            let sorted = expected_product_sorted(&a, ca, &b, cb);
            prop_assert_eq!(fast.to_bits(), sorted.to_bits());
        }
    }

    #[test]
    fn expected_product_single_regime() {
        // One regime of scope 0.4 and gate 0.25: covered share 0.4 passes at 0.25.
        let e = expected_product(&[(0.4, 0.25)], 1.0, &[], 1.0);
        assert!((e - (0.6 + 0.4 * 0.25)).abs() < 1e-15);
        // With chilling 0.5 on uncovered items.
        let e = expected_product(&[(0.4, 0.25)], 0.5, &[], 1.0);
        assert!((e - (0.6 * 0.5 + 0.4 * 0.25)).abs() < 1e-15);
    }

    /// A view of two sectors with the given active regimes and their
    /// effective scopes.
    fn view_with(regimes: &[(u32, [f64; 2])]) -> PolicyView {
        PolicyView {
            active: regimes.iter().map(|r| r.0).collect(),
            eff: regimes.iter().flat_map(|r| r.1).collect(),
            sectors: 2,
            breakpoints: vec![Vec::new(); 2],
            ..Default::default()
        }
    }

    #[test]
    fn scope_changes_are_the_draws_between_old_and_new_scopes() {
        // Regime 0 widens in sector 0, regime 2 ends, regime 3 starts,
        // regime 5 keeps its scopes; sector 1 moves only through regime 3.
        let prev = view_with(&[(0, [0.2, 0.0]), (2, [0.5, 0.0]), (5, [0.1, 0.3])]);
        let now = view_with(&[(0, [0.3, 0.0]), (3, [0.05, 0.6]), (5, [0.1, 0.3])]);
        let moved = now.scope_changes(&prev);
        // [0.2, 0.3) and [0, 0.5) merge; [0, 0.05) lies inside.
        assert_eq!(moved[0], vec![(0.0, 0.5)]);
        assert_eq!(moved[1], vec![(0.0, 0.6)]);
        // Disjoint moves stay apart, in ascending order.
        let later = view_with(&[(0, [0.35, 0.0]), (3, [0.05, 0.6]), (5, [0.15, 0.3])]);
        assert_eq!(later.scope_changes(&now)[0], vec![(0.1, 0.15), (0.3, 0.35)]);
        assert!(later.scope_changes(&now)[1].is_empty());
        assert!(later.scope_changes(&later).iter().all(Vec::is_empty));
    }

    #[test]
    fn expected_product_nested_and_two_way() {
        // Nested scopes 0.2 (gate 0.5) and 0.6 (gate 0.1): [0,0.2) both, [0.2,0.6) one.
        let e = expected_product(&[(0.2, 0.5), (0.6, 0.1)], 1.0, &[], 1.0);
        assert!((e - (0.2 * 0.05 + 0.4 * 0.1 + 0.4)).abs() < 1e-15);
        // Two directions multiply pointwise.
        let e = expected_product(&[(0.5, 0.2)], 1.0, &[(0.5, 0.5)], 1.0);
        assert!((e - (0.5 * 0.1 + 0.5)).abs() < 1e-15);
    }
}
