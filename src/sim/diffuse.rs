//! The parallel diffusion phase of a step (MODEL.md section 5): every
//! live row brings its exposures up to date (new holders' terms, moved
//! pairs' changes, class changes, recomputes), then draws its adoptions
//! against its thresholds. What it reads is last step's state and this
//! step's gate-class terms, prepared by the caller.

use fixedbitset::FixedBitSet;
use rayon::prelude::*;

use super::layers::{Family, Layer};
use super::rows::{Fixed, Hazard, Links, NONE, Row, add_rows};

/// What the parallel diffusion phase reads: last step's state and this
/// step's gate-class terms.
pub(super) struct DiffuseInputs<'s> {
    pub(super) links: &'s Links,
    /// Innovations with index >= this were born last step.
    pub(super) new_from: usize,
    pub(super) sector: &'s [u32],
    /// (innovation, new holder), by innovation; `event_start` indexes it.
    pub(super) events: &'s [(u32, u32)],
    pub(super) event_start: &'s [u32],
    pub(super) key_cur: &'s [u32],
    /// New innovations and those whose gate class changed.
    pub(super) recompute_flag: &'s [bool],
    /// The class terms of this step, then (looking ahead in the policy
    /// variant) of each later step of the block; a step past the last
    /// entry has the last one's (the counterfactual's never move).
    pub(super) terms: Vec<Terms<'s>>,
    pub(super) corrections: Corrections,
    /// beta * a_i * 2^-F (per unit of fixed-point exposure) per country,
    /// and nu_s * a_i per sector s and country i at `s * n + i`: computed
    /// in f64, rounded to f32 (the hazard sweep's precision, see
    /// [`Hazard`]).
    pub(super) beta_a: Vec<f32>,
    pub(super) nu_a: Vec<f32>,
    /// Thinning against bound exposures (policy variant, dense networks).
    pub(super) thin: Option<Thin<'s>>,
    /// The same for each later step of a block (`thin_ahead[s - 1]` for
    /// the step s steps from this one; see
    /// [`super::Simulation::thin_block`]): empty where none is thinned.
    pub(super) thin_ahead: Vec<Option<Thin<'s>>>,
    /// The CPU can run [`DiffuseInputs::advance_v3`].
    #[cfg(target_arch = "x86_64")]
    pub(super) x86_v3: bool,
    /// ... and AVX-512 F, BW, DQ and VL: [`DiffuseInputs::advance_v4`],
    /// the sixteen-lane hazard sweep and [`correction_avx512`].
    #[cfg(target_arch = "x86_64")]
    pub(super) x86_avx512: bool,
}

/// The pairs whose bound weight exceeds this step's exact weight, by
/// recipient: their sources as a bitset (so that those holding an
/// innovation are found a word at a time against its holders), and per
/// recipient a bound of what they add to any exposure beyond the exact
/// terms (see [`DiffuseInputs::thin_filter`]).
pub(super) struct Slack {
    n: usize,
    /// Recipient i's sources are the bits of
    /// `sources[i * words..(i + 1) * words]`, in the holder bitsets'
    /// blocks.
    sources: Vec<usize>,
    words: usize,
    /// Sum over i's pairs of bound minus exact weight, and their count.
    over: Vec<f64>,
    count: Vec<f64>,
}

impl Slack {
    /// From the bound weights `a` and the exact ones `a_exact` of a dense
    /// network (slot j * n + i).
    pub(super) fn new(n: usize, a: &[f64], a_exact: &[f64]) -> Self {
        let words = n.div_ceil(usize::BITS as usize);
        let mut sources = vec![0; n * words];
        let (mut over, mut count) = (vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            for j in 0..n {
                let at = j * n + i;
                if a[at] < a_exact[at] {
                    // Thinning needs hazards at least the exact ones. The
                    // bound trust is at least the exact trust, so only the
                    // power's last bit can turn the order where mu is not
                    // 1/2 (`libm::pow` is not correctly rounded): far
                    // below a fixed-point unit of exposure, the pair is
                    // taken as it is. Anything more is a wrong bound.
                    assert!(
                        a[at] >= a_exact[at] * (1.0 - 1e-12),
                        "bound weight {} below the exact {} at {j} -> {i}",
                        a[at],
                        a_exact[at]
                    );
                } else if a[at] > a_exact[at] {
                    let bits = usize::BITS as usize;
                    sources[i * words + j / bits] |= 1 << (j % bits);
                    over[i] += a[at] - a_exact[at];
                    count[i] += 1.0;
                }
            }
        }
        Slack {
            n,
            sources,
            words,
            over,
            count,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count.iter().all(|&c| c == 0.0)
    }

    /// Recipient i's sources that hold the innovation (`holders`), in
    /// ascending order.
    fn held(&self, i: usize, holders: &FixedBitSet) -> impl Iterator<Item = usize> {
        let bits = usize::BITS as usize;
        let mine = &self.sources[i * self.words..(i + 1) * self.words];
        mine.iter()
            .zip(holders.as_slice())
            .enumerate()
            .flat_map(move |(b, (&x, &y))| {
                let mut word = x & y;
                std::iter::from_fn(move || {
                    (word != 0).then(|| {
                        let j = b * bits + word.trailing_zeros() as usize;
                        word &= word - 1;
                        j
                    })
                })
            })
    }
}

/// What thinning reads.
#[derive(Clone, Copy)]
pub(super) struct Thin<'s> {
    pub(super) slack: &'s Slack,
    pub(super) a_bound: &'s [f64],
    pub(super) a_exact: &'s [f64],
    pub(super) chilled: &'s [bool],
    pub(super) gates: &'s [Option<std::sync::Arc<super::rows::Gates>>],
    /// Tests only: keep every candidate (the wrong distribution, which
    /// the statistical test must tell apart).
    pub(super) keep_all: bool,
}

/// The class terms of one step (see [`super::ClassTerms::bring`]) and
/// their changes since the step before.
#[derive(Clone, Copy)]
pub(super) struct Terms<'s> {
    pub(super) families: &'s [Family],
    pub(super) layers: &'s [Option<Layer>],
    /// Linked pairs whose weight moved since the step before.
    pub(super) moved: &'s Moved,
    /// The change of each family's terms at every moved pair, in the
    /// order of `moved.sources` (then [`PAD`] zeros), and a class's where
    /// its covered moved pairs make them differ ([`ClassChanges`]): the
    /// difference of the two fixed-point terms, so that adding it gives
    /// what a fresh sum would.
    pub(super) family_d: &'s [Vec<Fixed>],
    pub(super) class_d: &'s [Option<ClassChanges>],
    /// The same changes laid out as [`Moved::compact`] matrices, where
    /// made (see [`Corrections::Matrix`]); missing or None: not made.
    pub(super) family_c: &'s [Option<Vec<Fixed>>],
    pub(super) class_c: &'s [Option<Vec<Fixed>>],
}

impl<'s> Terms<'s> {
    /// Class `key`'s family and layer.
    #[inline]
    fn class(&self, key: u32) -> (&'s Family, &'s Layer) {
        let l = self.layers[key as usize]
            .as_ref()
            .expect("class in use this step");
        (&self.families[l.family], l)
    }
}

/// A class's changes at the moved pairs where its covered moved pairs
/// make them differ from its family's (see [`Layer::patch`]).
#[derive(Debug, Clone)]
pub(super) struct ClassChanges {
    /// (moved-pair index, the class's change minus its family's),
    /// ascending by slot.
    pub(super) own: Vec<(u32, Fixed)>,
    /// The class's whole changes (its family's plus `own`, then [`PAD`]
    /// zeros) where laid out ([`super::whole_changes`]); else each row adds
    /// `own` to its family's changes.
    pub(super) whole: Option<Vec<Fixed>>,
}

/// Class terms computed ahead for a later step of a block (see
/// [`super::Simulation::plan_block`]).
pub(super) struct AheadTerms {
    pub(super) families: Vec<Family>,
    pub(super) layers: Vec<Option<Layer>>,
    pub(super) moved: Moved,
    pub(super) family_d: Vec<Vec<Fixed>>,
    pub(super) class_d: Vec<Option<ClassChanges>>,
}

impl AheadTerms {
    pub(super) fn terms(&self) -> Terms<'_> {
        Terms {
            families: &self.families,
            layers: &self.layers,
            moved: &self.moved,
            family_d: &self.family_d,
            class_d: &self.class_d,
            family_c: &[],
            class_c: &[],
        }
    }
}

impl DiffuseInputs<'_> {
    /// The class terms `s` steps from this one.
    #[inline(always)]
    fn terms(&self, s: usize) -> Terms<'_> {
        self.terms[s.min(self.terms.len() - 1)]
    }

    /// Advance innovation k's row through `outs.len()` steps from this
    /// one: bring its exposures to the step, apply one step of hazard to
    /// every non-holder, drop the adopters from the row, append them to the
    /// step's entry of `outs` as (k, i), ascending, and mark them in
    /// `holders`. Steps after the first bring the row to that step's class
    /// terms ([`Self::terms`]: the same as this step's in the
    /// counterfactual, planned ahead in the policy variant; see
    /// [`super::Simulation::lookahead`]).
    /// On x86-64 CPUs with AVX2, BMI and POPCNT (most since 2013; checked
    /// at run time) the same code is compiled for them: wider vector loops
    /// and single-instruction bit counts. The operations and their order
    /// are the same (Rust never fuses a multiply and an add), so the
    /// results are the same bits.
    #[inline]
    pub(super) fn advance(
        &self,
        k: usize,
        row: &mut Row,
        holders: &mut FixedBitSet,
        outs: &mut [Vec<(u32, u32)>],
        scratch: &mut Scratch,
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.x86_v3 {
            if self.x86_avx512 {
                // SAFETY: the CPU has every feature `advance_v4` is
                // compiled for (checked when `x86_v3` and `x86_avx512`
                // were set).
                unsafe { self.advance_v4(k, row, holders, outs, scratch) };
                return;
            }
            // SAFETY: the CPU has every feature `advance_v3` is compiled
            // for (checked when `x86_v3` was set).
            unsafe { self.advance_v3(k, row, holders, outs, scratch) };
            return;
        }
        self.advance_any::<false>(k, row, holders, outs, scratch);
    }

    /// [`Self::advance_v3`] where the CPU also has AVX-512 (F, BW, DQ,
    /// VL): the compiler's vector loops (the matrix rows' sums above all)
    /// take sixteen lanes. The same operations, so the same bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt,avx512f,avx512bw,avx512dq,avx512vl")]
    unsafe fn advance_v4(
        &self,
        k: usize,
        row: &mut Row,
        holders: &mut FixedBitSet,
        outs: &mut [Vec<(u32, u32)>],
        scratch: &mut Scratch,
    ) {
        self.advance_any::<true>(k, row, holders, outs, scratch);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt")]
    unsafe fn advance_v3(
        &self,
        k: usize,
        row: &mut Row,
        holders: &mut FixedBitSet,
        outs: &mut [Vec<(u32, u32)>],
        scratch: &mut Scratch,
    ) {
        self.advance_any::<true>(k, row, holders, outs, scratch);
    }

    /// `V3`: the CPU has AVX2 and BMI2 (only in `advance_v3`).
    #[inline(always)]
    fn advance_any<const V3: bool>(
        &self,
        k: usize,
        row: &mut Row,
        holders: &mut FixedBitSet,
        outs: &mut [Vec<(u32, u32)>],
        scratch: &mut Scratch,
    ) {
        let mut from = outs[0].len();
        self.update_row_any::<V3>(k, row, holders, &mut outs[0], scratch);
        for s in 1..=outs.len() {
            let new = &outs[s - 1][from..];
            for &(_, i) in new {
                holders.insert(i as usize);
            }
            if s == outs.len() || row.is_retired() {
                return;
            }
            let (done, rest) = outs.split_at_mut(s);
            let new = &done[s - 1][from..];
            self.catch_up::<V3>(k, row, holders, new, scratch, self.terms(s));
            from = rest[0].len();
            // As `update_row_any` does at that step.
            match self.thin_ahead.get(s - 1).and_then(Option::as_ref) {
                Some(thin) => {
                    row.step_keeping::<V3>(k as u32, self.hazard(k), self.wide(), &mut rest[0]);
                    self.thin_filter(k, row, holders, &mut rest[0], from, thin);
                }
                None => row.step::<V3>(k as u32, self.hazard(k), self.wide(), &mut rest[0]),
            }
            row.tidy();
        }
    }

    /// Bring innovation k's row from the step before to the step of
    /// `terms`: the moved pairs' changes, then the terms of the new
    /// holders (`new_holders`, as (k, j), ascending; already marked in
    /// `holders`).
    #[inline(always)]
    fn catch_up<const V3: bool>(
        &self,
        k: usize,
        row: &mut Row,
        holders: &FixedBitSet,
        new_holders: &[(u32, u32)],
        scratch: &mut Scratch,
        terms: Terms<'_>,
    ) {
        if !terms.moved.to.is_empty() {
            self.apply_pair_changes::<V3>(k, row, holders, new_holders, scratch, terms);
        }
        if !new_holders.is_empty() {
            self.add_holders(k, row, new_holders, terms);
        }
    }

    /// Add the terms of innovation k's new holders (as (k, j)) at the
    /// class terms `terms`.
    #[inline(always)]
    fn add_holders(&self, k: usize, row: &mut Row, new_holders: &[(u32, u32)], terms: Terms<'_>) {
        let (fam, layer) = terms.class(self.key_cur[k]);
        let sources = new_holders.iter().map(|&(_, j)| j as usize);
        row.add_sources(self.links, &fam.base, sources.clone());
        if !layer.is_plain() {
            for j in sources {
                layer.add(&mut row.e, j);
            }
        }
    }

    /// The hazard sweep may take AVX-512 (read only with AVX2).
    #[inline(always)]
    fn wide(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.x86_avx512;
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// One step of hazard for innovation k.
    #[inline(always)]
    fn hazard(&self, k: usize) -> Hazard<'_> {
        let n = self.beta_a.len();
        let s = self.sector[k] as usize;
        Hazard {
            ba: &self.beta_a,
            na: &self.nu_a[s * n..(s + 1) * n],
        }
    }

    /// One step of [`Self::advance`] (without marking the new holders).
    #[inline(always)]
    fn update_row_any<const V3: bool>(
        &self,
        k: usize,
        row: &mut Row,
        holders: &FixedBitSet,
        out: &mut Vec<(u32, u32)>,
        scratch: &mut Scratch,
    ) {
        if row.is_retired() {
            return;
        }
        let terms = self.terms(0);
        if self.recompute_flag[k] {
            let (fam, layer) = terms.class(self.key_cur[k]);
            row.e.fill(0);
            // The family's rows of the holders, or (where fewer lack it
            // than hold it) its totals less the rows of those that lack it.
            let n = row.e.len();
            debug_assert_eq!(holders.len(), n);
            let held = holders.count_ones(..);
            if n - held < held {
                let lacking: Vec<usize> = holders.zeroes().collect();
                row.add_sources_but(self.links, &fam.base, &fam.total, lacking.iter().copied());
            } else {
                row.add_sources(self.links, &fam.base, holders.ones());
            }
            if !layer.is_plain() {
                layer.add_held(&mut row.e, holders);
            }
        } else {
            let range = self.event_start[k] as usize..self.event_start[k + 1] as usize;
            let new_holders = &self.events[range];
            // Rows born last step are recomputed (their class is new).
            debug_assert!(k < self.new_from);
            self.catch_up::<V3>(k, row, holders, new_holders, scratch, terms);
        }
        match &self.thin {
            Some(thin) => {
                let from = out.len();
                row.step_keeping::<V3>(k as u32, self.hazard(k), self.wide(), out);
                self.thin_filter(k, row, holders, out, from, thin);
            }
            None => row.step::<V3>(k as u32, self.hazard(k), self.wide(), out),
        }
        row.tidy();
    }

    /// The sweep ran on bound exposures (terms at bound weights), at the
    /// hazard h_bound: each adopter in `out[from..]` is a candidate,
    /// whose threshold was passed by r = h_bound - (what was left of it),
    /// 0 <= r < h_bound. It adopts if the threshold was passed at its
    /// exact hazard h too, r >= h_bound - h: what is left of a threshold
    /// is Exp(1), so given a candidate that happens with probability
    /// (1 - exp(-h)) / (1 - exp(-h_bound)), exact thinning of the step's
    /// trial, with no draw of its own. Otherwise it stays a non-holder
    /// with a fresh residual made from r (given the rejection, the
    /// position of r in [0, h_bound - h) is uniform under the right
    /// transform, and the future does not depend on it).
    #[inline(never)]
    fn thin_filter(
        &self,
        k: usize,
        row: &mut Row,
        holders: &FixedBitSet,
        out: &mut Vec<(u32, u32)>,
        from: usize,
        th: &Thin<'_>,
    ) {
        if out.len() == from {
            return;
        }
        let hz = self.hazard(k);
        let key = self.key_cur[k];
        let (fam, _) = self.terms(0).class(key);
        let factor = th.gates[key as usize]
            .as_ref()
            .and_then(|g| g.factor.as_ref());
        let sl = th.slack;
        let mut w = from;
        for p in from..out.len() {
            let i = out[p].1 as usize;
            let r = -f64::from(row.residual(i));
            // None: adopts; Some: the fresh residual.
            let rejected = if th.keep_all || sl.count[i] == 0.0 {
                None
            } else {
                Self::thin_decide(r, (hz, i, row.e[i]), holders, (fam, factor), th)
            };
            match rejected {
                None => {
                    row.settle(i, true, 0.0);
                    out[w] = out[p];
                    w += 1;
                }
                Some(fresh) => row.settle(i, false, fresh),
            }
        }
        out.truncate(w);
    }

    /// Whether candidate i (threshold passed by `r` at bound exposure
    /// `e`) adopts: None if so, else its fresh residual. Three tests, each
    /// a lower bound of the next's exact hazard, so that most candidates
    /// are settled without the exact terms.
    #[inline(always)]
    fn thin_decide(
        r: f64,
        (hz, i, e): (Hazard<'_>, usize, Fixed),
        holders: &FixedBitSet,
        (fam, factor): (&super::layers::Family, Option<&super::rows::Factor>),
        th: &Thin<'_>,
    ) -> Option<f32> {
        let sl = th.slack;
        let h_bound = f64::from(hz.at(i, e));
        // The candidate adopts if r >= h_bound - h; h at a lower bound of
        // the exact exposure is enough. Each excess pair's term is at most
        // (bound - exact weight) * b * gate (gates at most 1) above its
        // exact one, plus a unit of rounding of each term.
        let lower = |over: f64, count: f64| {
            let lo = e as f64 - (fam.b * over + 2.0 * count);
            // Positive: the cast's truncation is the floor (without a
            // call to the C library's `floor`, which the baseline x86-64
            // build makes).
            let lo = if lo <= 0.0 { 0 } else { lo as Fixed };
            f64::from(hz.at(i, lo))
        };
        if r >= h_bound - lower(sl.over[i], sl.count[i]) {
            return None;
        }
        // The same over the excess pairs whose source holds k.
        let (mut over, mut held) = (0.0, 0.0);
        for j in sl.held(i, holders) {
            let at = j * sl.n + i;
            over += th.a_bound[at] - th.a_exact[at];
            held += 1.0;
        }
        if r >= h_bound - lower(over, held) {
            return None;
        }
        // The exact exposure: each such pair's bound term out, its exact
        // term in (the class terms' own fixed-point values).
        let mut exact = e;
        for j in sl.held(i, holders) {
            let at = j * sl.n + i;
            let term = |a: f64| fam.term(factor, at, a, th.chilled[at]);
            exact = exact.wrapping_sub(term(th.a_bound[at]).wrapping_sub(term(th.a_exact[at])));
        }
        let gap = h_bound - f64::from(hz.at(i, exact));
        if r >= gap {
            return None;
        }
        // Rejected: r is in [0, gap) with density proportional to
        // exp(r), so F = 1 - expm1(r) / expm1(gap) is uniform on (0, 1]
        // and -ln F is Exp(1).
        let f = 1.0 - libm::expm1(r) / libm::expm1(gap);
        Some(-libm::log(f.max(f64::MIN_POSITIVE)) as f32)
    }

    /// Pairs whose weight moved (at the step of `terms`): for each
    /// non-holder i of an innovation that keeps its class (born before
    /// last step), add the difference of every moved source j -> i that
    /// held it before last step (integer sums: in any order). Last step's new holders (`new_holders`, as
    /// (k, j)) are left out: their rows are added at this step's values
    /// just after. `scratch` holds the older holders' bitset words and
    /// the compact sums. Each row takes the way [`Corrections`] estimates
    /// cheapest. Recipient by recipient, with `V3`, PEXT packs the holder bits at the
    /// moved positions so that each set bit's index in the moved list is
    /// its position in the packed word; without it, the moved bits below
    /// it are counted.
    #[inline(always)]
    fn apply_pair_changes<const V3: bool>(
        &self,
        k: usize,
        row: &mut Row,
        holders: &FixedBitSet,
        new_holders: &[(u32, u32)],
        scratch: &mut Scratch,
        terms: Terms<'_>,
    ) {
        let c = self.key_cur[k];
        let family = terms.class(c).1.family;
        let own = terms.class_d[c as usize].as_ref();
        let (d, compact, own): (&[Fixed], _, &[(u32, Fixed)]) =
            match own.map(|o| (o.whole.as_deref(), &o.own[..])) {
                Some((Some(whole), _)) => (whole, terms.class_c.get(c as usize), &[]),
                Some((None, own)) => (&terms.family_d[family], terms.family_c.get(family), own),
                None => (&terms.family_d[family], terms.family_c.get(family), &[]),
            };
        let compact = compact.and_then(Option::as_deref);
        let holders = holders.as_slice();
        let older = if new_holders.is_empty() {
            holders
        } else {
            // The holder words without the new holders (ascending), word by
            // word: a few words, where a call to copy them costs more.
            debug_assert!(new_holders.is_sorted());
            scratch.words.resize(holders.len(), 0);
            let mut new = new_holders.iter().map(|&(_, j)| j as usize).peekable();
            for (w, (older, &h)) in scratch.words.iter_mut().zip(holders).enumerate() {
                let mut mask = 0;
                while let Some(j) = new.next_if(|&j| j / usize::BITS as usize == w) {
                    mask |= 1usize << (j % usize::BITS as usize);
                }
                *older = h & !mask;
            }
            &scratch.words[..]
        };
        let m = terms.moved;
        // A class without its whole changes laid out: its own changes at
        // the moved pairs from older holders, then its family's below (a
        // holder's own exposure may take changes it never reads).
        for &(q, x) in own {
            let j = m.sources[q as usize] as usize;
            if older[j / usize::BITS as usize] >> (j % usize::BITS as usize) & 1 == 1 {
                let e = &mut row.e[m.to_of[q as usize] as usize];
                *e = e.wrapping_add(x);
            }
        }
        let count = |x: &[usize], y: &[usize], flip: bool| -> usize {
            x.iter()
                .zip(y)
                .map(|(&a, &b)| (a & if flip { !b } else { b }).count_ones() as usize)
                .sum()
        };
        let held = count(&m.src_mask, older, false);
        let lacking = count(&m.to_mask, holders, true);
        // Costs in pair additions (see `Corrections`): a matrix row's
        // vectors, eight sums each.
        let from_sources = held * m.mean_out;
        let from_recipients = (RECIPIENT_COST + m.mean_in / 2) * lacking;
        let not_held = m.sources_moved - held;
        let matrix_rows = held.min(not_held + 1);
        let by_matrix =
            matrix_rows * (m.width / 8 + MATRIX_ROW_COST) + if m.full { 0 } else { m.to.len() };
        let cheaper = if from_sources <= from_recipients {
            Corrections::Sources
        } else {
            Corrections::Recipients
        };
        let way = match (self.corrections, compact) {
            (Corrections::Chosen, Some(_)) if by_matrix < from_sources.min(from_recipients) => {
                if held <= not_held + 1 {
                    Corrections::Matrix
                } else {
                    Corrections::Complement
                }
            }
            (Corrections::Chosen, _) | (Corrections::Matrix | Corrections::Complement, None) => {
                cheaper
            }
            (forced, _) => forced,
        };
        if let (Corrections::Matrix | Corrections::Complement, Some(dc)) = (way, compact) {
            // The compact rows of the older holders among the moved
            // sources, or the column totals less the rows of the moved
            // sources that are not older holders.
            let complement = way == Corrections::Complement;
            let Scratch {
                acc, plus, minus, ..
            } = scratch;
            plus.clear();
            minus.clear();
            if complement {
                plus.push(m.sources_moved * m.width);
            }
            for (w, (&sm, &o)) in m.src_mask.iter().zip(older).enumerate() {
                let mut js = sm & if complement { !o } else { o };
                while js != 0 {
                    let j = w * usize::BITS as usize + js.trailing_zeros() as usize;
                    js &= js - 1;
                    let at = m.src_pos[j] as usize * m.width;
                    if complement {
                        minus.push(at)
                    } else {
                        plus.push(at)
                    }
                }
            }
            if m.full {
                // Columns by country: straight into the exposures.
                add_rows(&mut row.e, dc, plus.iter().copied(), minus.iter().copied());
            } else {
                // Columns by moved recipient: summed, then added to each.
                acc.clear();
                acc.resize(m.width, 0);
                add_rows(acc, dc, plus.iter().copied(), minus.iter().copied());
                for (&i, &x) in m.to.iter().zip(acc.iter()) {
                    let e = &mut row.e[i as usize];
                    *e = e.wrapping_add(x);
                }
            }
            return;
        }
        if way == Corrections::Sources {
            for (w, (&sm, &o)) in m.src_mask.iter().zip(older).enumerate() {
                let mut js = sm & o;
                while js != 0 {
                    let j = w * usize::BITS as usize + js.trailing_zeros() as usize;
                    js &= js - 1;
                    for &(i, q) in &m.out[m.out_start[j]..m.out_start[j + 1]] {
                        let e = &mut row.e[i as usize];
                        *e = e.wrapping_add(d[q as usize]);
                    }
                }
            }
            return;
        }
        // Moved recipients that lack the innovation, ascending.
        for (w, (&to, &h)) in m.to_mask.iter().zip(holders).enumerate() {
            let mut lacking = to & !h;
            while lacking != 0 {
                let i = w * usize::BITS as usize + lacking.trailing_zeros() as usize;
                lacking &= lacking - 1;
                self.correct::<V3>(m, i, older, d, &mut row.e);
            }
        }
    }

    /// Add to `e[i]` the changes `d` of the moved pairs j -> i whose source
    /// holds the innovation (bits of `holders`), in ascending j; `e` is
    /// not touched when there are none.
    #[inline(always)]
    fn correct<const V3: bool>(
        &self,
        m: &Moved,
        i: usize,
        holders: &[usize],
        d: &[Fixed],
        e: &mut [Fixed],
    ) {
        let words = m.word_start[i]..m.word_start[i + 1];
        if m.word[words.clone()]
            .iter()
            .zip(&m.bits[words.clone()])
            .all(|(&w, &b)| holders[w as usize] & b == 0)
        {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if V3 && self.x86_avx512 {
            // SAFETY: V3 is only true in `advance_v3`, which runs on CPUs
            // with AVX2 and BMI2, and `x86_avx512` only on CPUs with
            // AVX-512F as well.
            e[i] = e[i].wrapping_add(unsafe { correction_avx512(m, i, holders, d) });
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if V3 {
            // SAFETY: V3 is only true in `advance_v3`, which runs on CPUs
            // with AVX2 and BMI2; `d` is padded (see `PAD`).
            e[i] = e[i].wrapping_add(unsafe { correction_avx2(m, i, holders, d) });
            return;
        }
        let base = m.start[i];
        let mut sum = e[i];
        for at in words {
            let (w, bits, rank) = (m.word[at] as usize, m.bits[at], m.rank[at]);
            let h = holders[w];
            let mut hit = h & bits;
            while hit != 0 {
                let b = hit.trailing_zeros();
                let below = (bits & ((1usize << b) - 1)).count_ones();
                sum = sum.wrapping_add(d[base + (rank + below) as usize]);
                hit &= hit - 1;
            }
        }
        e[i] = sum;
    }
}

/// How a row takes the changes of the moved pairs (MODEL.md section 5's
/// sums kept up to date when weights move). Integer sums: every way gives
/// the same exposures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Corrections {
    /// Whichever is cheapest for the row by the estimates below.
    Chosen,
    /// Walk the moved pairs of each older holder, one addition per pair
    /// (a holder's own exposure takes changes it never reads).
    Sources,
    /// For each moved recipient that lacks the innovation, sum the changes
    /// from its moved sources that hold it.
    Recipients,
    /// Add each older holder's row of the compact matrix of changes (moved
    /// sources x moved recipients, or every country where most are moved
    /// recipients; zero where the pair did not move) in vector lanes:
    /// where the moved pairs fill most of that rectangle (one regime's
    /// controllers and targets: their trust moves every step).
    Matrix,
    /// The same, as the matrix's column totals less the rows of the moved
    /// sources that are not older holders: where most of them are.
    Complement,
}

/// A diffusion task's working space, reused from row to row.
#[derive(Default)]
pub(super) struct Scratch {
    /// A row's older holders' bitset words.
    words: Vec<usize>,
    /// Per moved recipient, the changes summed by [`Corrections::Matrix`]
    /// (columns by moved recipient).
    acc: Vec<Fixed>,
    /// The compact matrix rows (offsets) a row adds and subtracts.
    plus: Vec<usize>,
    minus: Vec<usize>,
}

/// Walking a moved recipient costs about this many pair additions plus
/// half its moved sources (a compact matrix row of n sums costs n / 8
/// plus [`MATRIX_ROW_COST`]). Timed per way (results/BENCHMARKS.md,
/// fourteenth round): in medium_policy.toml, where a moved recipient has
/// some 68 moved sources, about 60 cycles a recipient against 55 for a
/// matrix row of 200 sums (a flat 16 sent too many rows the recipient
/// way there); medium.toml's few moved sources per recipient keep the
/// flat 16's choices.
const RECIPIENT_COST: usize = 12;

/// Adding a row of the compact matrix costs its vectors plus about this
/// many pair additions.
const MATRIX_ROW_COST: usize = 4;

/// Zeros padding the per-class changes of the moved pairs: a block read by
/// [`correction_avx2`] may run past the last change.
pub(super) const PAD: usize = 8;

/// Sum of the changes `d` of the moved pairs j -> i whose source holds the
/// innovation (bits of `holders`): per bitset word, PEXT packs the holder
/// bits at the moved positions (the k-th packed bit is the k-th moved
/// source of the word), and eight changes at a time are masked by the
/// packed bits and added in vector lanes. Integer sums: the same result as
/// the scalar loop of [`DiffuseInputs::correct`].
///
/// # Safety
/// The CPU must have AVX2 and BMI2, and `d` must have [`PAD`] entries
/// after the last change.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2")]
unsafe fn correction_avx2(m: &Moved, i: usize, holders: &[usize], d: &[Fixed]) -> Fixed {
    use std::arch::x86_64::*;
    let bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let mut acc = _mm256_setzero_si256();
    let base = m.start[i];
    for at in m.word_start[i]..m.word_start[i + 1] {
        let (w, bits, rank) = (m.word[at] as usize, m.bits[at], m.rank[at] as usize);
        // SAFETY: the caller guarantees BMI2.
        let mut packed = unsafe { pext(holders[w], bits) };
        let mut from = base + rank;
        // Packed bits stop below the word's count of moved sources, so a
        // block starts inside recipient i's changes and ends within PAD.
        assert!(from + (usize::BITS - packed.leading_zeros()) as usize + PAD <= d.len() + 1);
        while packed != 0 {
            let byte = _mm256_set1_epi32((packed & 0xFF) as i32);
            let mask = _mm256_cmpeq_epi32(_mm256_and_si256(byte, bit), bit);
            // SAFETY: from + 8 <= d.len() (checked above for the last block).
            let v = unsafe { _mm256_loadu_si256(d.as_ptr().add(from).cast::<__m256i>()) };
            acc = _mm256_add_epi32(acc, _mm256_and_si256(mask, v));
            packed >>= 8;
            from += 8;
        }
    }
    let half = _mm_add_epi32(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256::<1>(acc),
    );
    let pair = _mm_add_epi32(half, _mm_shuffle_epi32::<0b01_00_11_10>(half));
    let one = _mm_add_epi32(pair, _mm_shuffle_epi32::<0b10_11_00_01>(pair));
    _mm_cvtsi128_si32(one)
}

/// [`correction_avx2`] sixteen changes at a time, masked by the packed
/// bits directly (a masked load: lanes past the last change are not
/// read). Integer sums: the same result.
///
/// # Safety
/// The CPU must have AVX-512F and BMI2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,bmi1,bmi2")]
unsafe fn correction_avx512(m: &Moved, i: usize, holders: &[usize], d: &[Fixed]) -> Fixed {
    use std::arch::x86_64::*;
    let mut acc = _mm512_setzero_si512();
    let base = m.start[i];
    for at in m.word_start[i]..m.word_start[i + 1] {
        let (w, bits, rank) = (m.word[at] as usize, m.bits[at], m.rank[at] as usize);
        // SAFETY: the caller guarantees BMI2.
        let mut packed = unsafe { pext(holders[w], bits) };
        let mut from = base + rank;
        // Packed bits stop below the word's count of moved sources, so
        // every lane read lies within recipient i's changes.
        assert!(from + (usize::BITS - packed.leading_zeros()) as usize <= d.len());
        while packed != 0 {
            // SAFETY: lanes masked off are not read; those read are below
            // d.len() (checked above).
            let v =
                unsafe { _mm512_maskz_loadu_epi32((packed & 0xFFFF) as u16, d.as_ptr().add(from)) };
            acc = _mm512_add_epi32(acc, v);
            packed >>= 16;
            from += 16;
        }
    }
    _mm512_reduce_add_epi32(acc)
}

/// The bits of `h` at the positions set in `m`, packed low (BMI2 PEXT).
///
/// # Safety
/// The CPU must have BMI2.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn pext(h: usize, m: usize) -> usize {
    // SAFETY: the caller guarantees BMI2; usize is 64 bits on x86-64.
    unsafe { std::arch::x86_64::_pext_u64(h as u64, m as u64) as usize }
}

/// Linked pairs whose weight moved since last step, by recipient.
pub(super) struct Moved {
    /// Recipients with any moved source, ascending, and as bitset words.
    pub(super) to: Vec<u32>,
    to_mask: Vec<usize>,
    /// Moved sources, by recipient then ascending; recipient i's are
    /// `sources[start[i]..start[i + 1]]`.
    sources: Vec<u32>,
    start: Vec<usize>,
    /// The recipient of each moved pair (by index in `sources`).
    pub(super) to_of: Vec<u32>,
    /// Recipient i's bitset words with a moved source are
    /// `word_start[i]..word_start[i + 1]` in `word`, `bits` and `rank`:
    /// the word's index, its bits, and i's moved sources in words before
    /// it (on sparse networks most of a recipient's words have none).
    word_start: Vec<usize>,
    word: Vec<u32>,
    bits: Vec<usize>,
    rank: Vec<u32>,
    /// The same pairs source-major, i.e. in the order of their slots (so
    /// that reading per-slot arrays at them walks memory forward): each is
    /// (slot, index of the pair in `sources`).
    pub(super) by_slot: Vec<(u32, u32)>,
    /// The same again as (recipient, index in `sources`); source j's are
    /// `out[out_start[j]..out_start[j + 1]]`.
    out: Vec<(u32, u32)>,
    out_start: Vec<usize>,
    /// Sources with any moved pair, as bitset words, and their mean
    /// number of moved pairs (rounded up).
    src_mask: Vec<usize>,
    mean_out: usize,
    /// Moved sources per moved recipient (rounded up).
    mean_in: usize,
    /// Each moved source's position among them (ascending), NONE for the
    /// others; per moved pair (by index in `sources`), its cell in a
    /// compact matrix (source position * `width` + the column). `full`:
    /// the columns are the countries (`width` = n), where at least
    /// [`FULL_WIDTH`] of them are moved recipients; else the moved
    /// recipients' positions in `to` (`width` = `to.len()` rounded up to
    /// 8), and a row's sums are then added to each.
    src_pos: Vec<u32>,
    sources_moved: usize,
    cell: Vec<u32>,
    width: usize,
    full: bool,
}

impl Moved {
    /// From per-recipient bitsets of moved sources (none at all in the
    /// counterfactual); `full_width` forces the compact matrices' columns
    /// (see `full`).
    pub(super) fn new(
        changed: &[FixedBitSet],
        slot: &[u32],
        n: usize,
        full_width: Option<bool>,
    ) -> Self {
        let mut m = Moved {
            to: Vec::new(),
            to_mask: vec![0; n.div_ceil(usize::BITS as usize)],
            sources: Vec::new(),
            start: vec![0; n + 1],
            to_of: Vec::new(),
            word_start: vec![0; n + 1],
            word: Vec::new(),
            bits: Vec::new(),
            rank: Vec::new(),
            by_slot: Vec::new(),
            out: Vec::new(),
            out_start: vec![0; n + 1],
            src_mask: vec![0; n.div_ceil(usize::BITS as usize)],
            mean_out: 0,
            mean_in: 0,
            src_pos: vec![NONE; n],
            sources_moved: 0,
            cell: Vec::new(),
            width: 0,
            full: false,
        };
        for i in 0..n {
            if let Some(c) = changed.get(i)
                && !c.is_clear()
            {
                m.to.push(i as u32);
                m.to_mask[i / usize::BITS as usize] |= 1 << (i % usize::BITS as usize);
                let mut count = 0;
                for (w, &word) in c.as_slice().iter().enumerate() {
                    if word != 0 {
                        m.word.push(w as u32);
                        m.bits.push(word);
                        m.rank.push(count);
                        count += word.count_ones();
                    }
                }
                m.sources.extend(c.ones().map(|j| j as u32));
                m.to_of.resize(m.sources.len(), i as u32);
            }
            m.start[i + 1] = m.sources.len();
            m.word_start[i + 1] = m.word.len();
        }
        // The pairs source-major: counted by source, then placed in the
        // order of recipients (a stable counting sort), so each source's
        // come by ascending recipient, i.e. by ascending slot.
        for &j in &m.sources {
            m.out_start[j as usize + 1] += 1;
        }
        let mut sources = 0;
        for j in 0..n {
            if m.out_start[j + 1] > 0 {
                m.src_mask[j / usize::BITS as usize] |= 1 << (j % usize::BITS as usize);
                m.src_pos[j] = sources as u32;
                sources += 1;
            }
            m.out_start[j + 1] += m.out_start[j];
        }
        let mut fill = m.out_start[..n].to_vec();
        m.by_slot = vec![(0, 0); m.sources.len()];
        m.out = vec![(0, 0); m.sources.len()];
        for &i in &m.to {
            let i = i as usize;
            for q in m.start[i]..m.start[i + 1] {
                let j = m.sources[q] as usize;
                let at = fill[j];
                fill[j] += 1;
                m.by_slot[at] = (slot[j * n + i], q as u32);
                m.out[at] = (i as u32, q as u32);
            }
        }
        debug_assert!(m.by_slot.windows(2).all(|w| w[0].0 < w[1].0));
        m.mean_out = m.out.len().div_ceil(sources.max(1));
        m.mean_in = m.sources.len().div_ceil(m.to.len().max(1));
        m.sources_moved = sources;
        m.full = full_width.unwrap_or(m.to.len() * FULL_WIDTH.1 >= n * FULL_WIDTH.0);
        m.width = if m.full {
            n
        } else {
            m.to.len().next_multiple_of(8)
        };
        m.cell = vec![0; m.sources.len()];
        for (r, &i) in m.to.iter().enumerate() {
            let i = i as usize;
            let column = if m.full { i } else { r };
            for q in m.start[i]..m.start[i + 1] {
                let p = m.src_pos[m.sources[q] as usize] as usize;
                m.cell[q] = (p * m.width + column) as u32;
            }
        }
        m
    }

    /// Whether the moved pairs fill enough of the rectangle of moved
    /// sources x moved recipients for compact matrices to pay.
    fn compact_pays(&self) -> bool {
        !self.sources.is_empty()
            && self.sources.len() * MATRIX_FILL >= self.sources_moved * self.to.len()
    }

    /// The changes `d` (by moved pair) as a compact matrix: row p is the
    /// p-th moved source's changes by column (see `full`), zero where the
    /// pair did not move; a last row holds the column totals.
    fn compact(&self, d: &[Fixed]) -> Vec<Fixed> {
        let w = self.width;
        let mut c = vec![0; (self.sources_moved + 1) * w];
        for (&at, &x) in self.cell.iter().zip(d) {
            c[at as usize] = x;
        }
        let (rows, total) = c.split_at_mut(self.sources_moved * w);
        for row in rows.chunks_exact(w) {
            for (t, &x) in total.iter_mut().zip(row) {
                *t = t.wrapping_add(x);
            }
        }
        c
    }
}

/// Compact matrices have a column per country where at least this share
/// (numerator, denominator) of the countries are moved recipients.
pub(super) const FULL_WIDTH: (usize, usize) = (3, 4);

/// Compact matrices pay where the moved pairs fill at least 1 / this of
/// the rectangle of moved sources x moved recipients.
const MATRIX_FILL: usize = 4;

/// A class's changes are laid out as a compact matrix when at least this
/// many live innovations are in the class (families: always). Laying one
/// out costs about as much as a few dozen rows save by it: 16, 32 and 64
/// measured alike and about 3% faster than 8 on medium_policy.toml
/// (results/BENCHMARKS.md, tenth round).
pub(super) const MATRIX_ROWS: usize = 32;

/// The compact matrices of this step's changes (see
/// [`Corrections::Matrix`]): every family's, and the classes' with their
/// own changes and at least [`MATRIX_ROWS`] live innovations; none where
/// the moved pairs are too scattered.
#[allow(clippy::type_complexity)]
pub(super) fn compact_changes(
    moved: &Moved,
    rows: &[usize],
    layers: &[Option<Layer>],
    family_d: &[Vec<Fixed>],
    class_d: &[Option<ClassChanges>],
) -> (Vec<Option<Vec<Fixed>>>, Vec<Option<Vec<Fixed>>>) {
    if !moved.compact_pays() {
        return (Vec::new(), Vec::new());
    }
    let mut family_used = vec![false; family_d.len()];
    for (l, &r) in layers.iter().zip(rows) {
        if let Some(l) = l.as_ref().filter(|_| r > 0) {
            family_used[l.family] = true;
        }
    }
    let family_c = family_d
        .par_iter()
        .zip(&family_used)
        .map(|(d, &used)| used.then(|| moved.compact(d)))
        .collect();
    let class_c = class_d
        .par_iter()
        .zip(rows)
        .map(|(d, &r)| {
            d.as_ref()
                .and_then(|d| d.whole.as_deref())
                .filter(|_| r >= MATRIX_ROWS)
                .map(|d| moved.compact(d))
        })
        .collect();
    (family_c, class_c)
}
