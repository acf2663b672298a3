//! Storage of the diffusion state: one row per live innovation (fixed-point
//! exposures by country; residuals by country while many countries lack
//! it, a compact list of its non-holders after), and the network's links
//! in the layout the exposure updates read.

use ndarray::Array2;

/// Marks "no entry" in position maps and pair slots.
pub(crate) const NONE: u32 = u32::MAX;

/// Exposures are fixed-point numbers: a row stores E_ik * 2^F as an
/// integer, each term (a link's weight times its gates, or a moved pair's
/// change) rounded to an integer once. Integer sums do not depend on the
/// order of their terms, so an exposure kept up to date incrementally is
/// the same bits as one summed afresh, in any order, on any kernel (see
/// ARCHITECTURE.md). F is chosen per run by [`fixed_scale`].
pub(crate) type Fixed = i32;

/// x rounded to the nearest integer (ties to even), as an `i32`: adding
/// 1.5 * 2^52 leaves the rounded value in the low bits of the sum's
/// mantissa (the unit in the last place there is 1), read off in two's
/// complement. Valid for |x| <= 2^31, which [`fixed_scale`] guarantees for
/// every term and sum. No branches, so it vectorises.
#[inline(always)]
pub(crate) fn fix(x: f64) -> Fixed {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    debug_assert!(
        x.abs() <= 2_147_483_648.0,
        "{x} is out of fixed-point range"
    );
    (x + MAGIC).to_bits() as Fixed
}

/// The scale 2^F of fixed-point exposures for a run whose exposures never
/// exceed `max_exposure`: the largest power of two that keeps
/// `max_exposure * 2^F` at most 2^30 (half the `i32` range, which leaves
/// room for the half-unit rounding of each of up to 2^29 terms). With
/// recipient-normalised weights (max 1) that is F = 30, a resolution of
/// 9.3e-10.
/// Ask the cache for the first `max` bytes of `v` (a hint that changes no
/// value; nothing off x86-64).
#[inline]
pub(crate) fn prefetch_lines<T>(v: &[T], max: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const LINE: usize = 64;
        let bytes = std::mem::size_of_val(v).min(max);
        let base = v.as_ptr().cast::<i8>();
        for at in (0..bytes).step_by(LINE) {
            // SAFETY: `at` is inside the slice, and a prefetch never faults
            // or writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(at)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, max);
}

pub(crate) fn fixed_scale(max_exposure: f64) -> f64 {
    if !max_exposure.is_finite() || max_exposure <= 0.0 {
        return (1u64 << 30) as f64;
    }
    let mut f = (30.0 - libm::log2(max_exposure)).floor() as i32;
    // Guard the rounding of log2 at exact powers of two.
    while max_exposure * libm::scalbn(1.0, f) > (1u64 << 30) as f64 {
        f -= 1;
    }
    while max_exposure * libm::scalbn(1.0, f + 1) <= (1u64 << 30) as f64 {
        f += 1;
    }
    libm::scalbn(1.0, f)
}

/// The network's links j -> i (w_ji != 0), and how per-pair terms are
/// laid out. Dense networks (gravity) keep full n x n matrices, indexed
/// `j * n + i`, and update a row by reading the matrix at the row's own
/// countries; sparse ones (Barabasi-Albert, small world) keep one value per
/// link, source-major, and update a row by visiting the source's links.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    pub n: usize,
    pub dense: bool,
    /// Links of source j: `targets[start[j]..start[j + 1]]`, ascending.
    pub start: Vec<usize>,
    pub targets: Vec<u32>,
    /// slot[j * n + i]: where the value of j -> i sits in a per-slot array,
    /// NONE when there is no link (and never NONE when dense).
    pub slot: Vec<u32>,
}

impl Links {
    /// A network is stored densely when at least a quarter of the pairs
    /// are linked: reading a dense matrix row is then cheaper than chasing
    /// link lists.
    pub fn new(w: &Array2<f64>) -> Self {
        let n = w.nrows();
        let mut start = Vec::with_capacity(n + 1);
        let mut targets = Vec::new();
        start.push(0);
        for j in 0..n {
            targets.extend((0..n).filter(|&i| w[[j, i]] != 0.0).map(|i| i as u32));
            start.push(targets.len());
        }
        let dense = 4 * targets.len() >= n * n;
        let slot = if dense {
            (0..(n * n) as u32).collect()
        } else {
            let mut slot = vec![NONE; n * n];
            for j in 0..n {
                for (q, &i) in targets[start[j]..start[j + 1]].iter().enumerate() {
                    slot[j * n + i as usize] = (start[j] + q) as u32;
                }
            }
            slot
        };
        Links {
            n,
            dense,
            start,
            targets,
            slot,
        }
    }

    /// Number of slots: n * n when dense, one per link otherwise.
    pub fn values(&self) -> usize {
        if self.dense {
            self.n * self.n
        } else {
            self.targets.len()
        }
    }

    /// Where source j's values sit in a per-slot array: its row of the
    /// matrix when dense, its links' slots otherwise (consecutive sources
    /// have consecutive ranges).
    #[inline]
    pub fn slots_of(&self, j: usize) -> std::ops::Range<usize> {
        if self.dense {
            j * self.n..(j + 1) * self.n
        } else {
            self.start[j]..self.start[j + 1]
        }
    }

    /// Slots of j's links and the countries they reach.
    #[inline]
    pub fn of(&self, j: usize) -> (std::ops::Range<usize>, &[u32]) {
        let range = self.start[j]..self.start[j + 1];
        let targets = &self.targets[range.clone()];
        (range, targets)
    }
}

/// The trust-free part of a gate class: its positive-list boost, its
/// chilling factor, and (unless no regime covers it) the gate product of
/// every slot, NaN where no regime covers the pair.
#[derive(Debug, Clone)]
pub(crate) struct Gates {
    pub boost: f64,
    /// Applies to chilled pairs that no regime covers (1 when none).
    pub chill: f64,
    pub factor: Option<Factor>,
}

/// A class's regime gate products per slot, NaN where no regime covers the
/// pair. A class has few distinct products, so they are kept as one-byte
/// codes into a table (an eighth of the memory of f64 products), unless
/// there are more than 256.
#[derive(Debug, Clone)]
pub(crate) enum Factor {
    Coded { code: Vec<u8>, values: Vec<f64> },
    Plain(Vec<f64>),
}

impl Factor {
    pub fn new(g: Vec<f64>) -> Self {
        let mut values: Vec<f64> = Vec::new();
        let mut code = Vec::with_capacity(g.len());
        let mut last: Option<(u64, u8)> = None;
        for &x in &g {
            let c = match last {
                Some((bits, c)) if bits == x.to_bits() => c,
                _ => match code_of(&mut values, x) {
                    Some(c) => c,
                    None => return Factor::Plain(g),
                },
            };
            last = Some((x.to_bits(), c));
            code.push(c);
        }
        Factor::Coded { code, values }
    }

    #[inline]
    pub fn at(&self, slot: usize) -> f64 {
        match self {
            Factor::Coded { code, values } => values[code[slot] as usize],
            Factor::Plain(g) => g[slot],
        }
    }

    /// Call `f(slot, product)` for every slot in `range` that some regime
    /// covers (product not NaN), ascending; runs of eight uncovered coded
    /// slots are skipped at once.
    pub fn for_covered(&self, range: std::ops::Range<usize>, mut f: impl FnMut(usize, f64)) {
        match self {
            Factor::Plain(g) => {
                for at in range {
                    if !g[at].is_nan() {
                        f(at, g[at]);
                    }
                }
            }
            Factor::Coded { code, values } => {
                let nan = values.iter().position(|v| v.is_nan());
                let bytes = &code[range.clone()];
                let skip = nan.map(|c| u64::from_ne_bytes([c as u8; 8]));
                let mut at = range.start;
                for block in bytes.chunks(8) {
                    let whole = <[u8; 8]>::try_from(block).ok().map(u64::from_ne_bytes);
                    if whole.is_none() || whole != skip {
                        for (q, &c) in block.iter().enumerate() {
                            if Some(c as usize) != nan {
                                f(at + q, values[c as usize]);
                            }
                        }
                    }
                    at += block.len();
                }
            }
        }
    }

    /// Set one slot's product (a new value gets a code, or the codes are
    /// given up past 256 distinct values).
    pub fn set(&mut self, slot: usize, x: f64) {
        match self {
            Factor::Plain(g) => g[slot] = x,
            Factor::Coded { code, values } => match code_of(values, x) {
                Some(c) => code[slot] = c,
                None => {
                    let mut g: Vec<f64> = code.iter().map(|&c| values[c as usize]).collect();
                    g[slot] = x;
                    *self = Factor::Plain(g);
                }
            },
        }
    }
}

/// The code of gate product x in `values` (by bits), added if new; None
/// when the table already holds 256 values.
fn code_of(values: &mut Vec<f64>, x: f64) -> Option<u8> {
    match values.iter().position(|v| v.to_bits() == x.to_bits()) {
        Some(c) => Some(c as u8),
        None if values.len() <= u8::MAX as usize => {
            values.push(x);
            Some((values.len() - 1) as u8)
        }
        None => None,
    }
}

/// A row keeps a residual per country while at least one country in
/// `LIST_BELOW` lacks the innovation, and a compact list of the
/// non-holders below that (16 rather than 8, 4 or 32: medium 0.296 s
/// against 0.306 s with 8, see results/BENCHMARKS.md).
const LIST_BELOW: usize = 16;

/// One step of hazard for every country: `ba[i] * max(e_ik, 0) + na[i]`
/// in single precision (`e_ik` the fixed-point exposure converted to f32,
/// `ba[i]` = beta * a_i * 2^-F, so that `ba[i] * e_ik` is beta * a_i *
/// E_ik; `na[i]` = nu_s * a_i, nu_s of the innovation's sector; both
/// computed in f64 and rounded to f32 once per step: the same values each
/// step). Why f32 is enough: ARCHITECTURE.md, "Residuals in single
/// precision".
#[derive(Clone, Copy)]
pub(crate) struct Hazard<'a> {
    pub ba: &'a [f32],
    pub na: &'a [f32],
}

impl Hazard<'_> {
    #[inline(always)]
    pub fn at(&self, i: usize, e: Fixed) -> f32 {
        self.ba[i] * (e as f32).max(0.0) + self.na[i]
    }
}

/// The non-holders of one live innovation: their residuals (threshold
/// minus cumulative hazard; i adopts when it reaches 0), and the exposure
/// E_ik of every country in a dense vector indexed by country (holders'
/// values are kept up to date too but never used), so that a new holder's
/// links add straight into it.
///
/// While many countries lack the innovation the residuals are also a dense
/// vector by country (holders and adopters +inf), so that a step of hazard
/// is one straight vector loop; once fewer than one in [`LIST_BELOW`] do,
/// they move to a compact list ascending by country, where adopters die in
/// place (infinite residual) until a quarter of the list is dead and it is
/// compacted. A row is freed (empty) when everyone holds the innovation.
#[derive(Debug, Default, Clone)]
pub(crate) struct Row {
    /// Residuals (f32): by country, or (list mode) of the entries of
    /// `idx`.
    r: Vec<f32>,
    /// List mode: the countries of the entries of `r`, ascending. Empty
    /// while the row is dense.
    idx: Vec<u32>,
    /// Exposure by country in fixed point ([`Fixed`]), n values, or none
    /// when retired.
    pub e: Vec<Fixed>,
    /// Countries without the innovation.
    alive: usize,
    list: bool,
}

impl Row {
    /// A new row from the thresholds of every country (holders included,
    /// so that the stream is consumed the same way whoever holds; their
    /// entries become +inf).
    pub fn new(mut r: Vec<f32>, is_holder: impl Fn(usize) -> bool) -> Self {
        let mut alive = 0;
        for (i, x) in r.iter_mut().enumerate() {
            if is_holder(i) {
                *x = f32::INFINITY;
            } else {
                alive += 1;
            }
        }
        let mut row = Row {
            e: vec![0; r.len()],
            r,
            idx: Vec::new(),
            alive,
            list: false,
        };
        row.tidy();
        row
    }

    /// Ask the cache for the first kilobyte of the row's residuals (and
    /// list) and up to 16 KiB of its exposure vector (which a sparse
    /// network's link updates visit out of order): a hint that changes no
    /// value. Rows live in separate heap blocks, so the hardware prefetcher
    /// cannot guess the next one; asking while the previous row is being
    /// updated hides most of that latency (see results/BENCHMARKS.md).
    #[inline]
    pub fn prefetch(&self) {
        const MAX: usize = 1024;
        prefetch_lines(&self.idx, MAX);
        prefetch_lines(&self.r, MAX);
        prefetch_lines(&self.e, 16 * MAX);
    }

    /// Entries in the list (list mode), dead ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether every country holds the innovation.
    #[inline]
    pub fn is_retired(&self) -> bool {
        self.alive == 0
    }

    /// Exposure of country i (fixed point), None when i holds the
    /// innovation.
    pub fn exposure_of(&self, i: usize) -> Option<Fixed> {
        let r = if self.list {
            let p = self.idx.binary_search(&(i as u32)).ok()?;
            self.r[p]
        } else {
            *self.r.get(i)?
        };
        (r != f32::INFINITY).then(|| self.e[i])
    }

    /// Add the rows of a matrix of terms (in fixed point, laid out by the
    /// slots of `links`) of `sources` to the exposures: integer sums, so
    /// the order and the layout do not change the result (skipped terms
    /// are exact zeros: no link).
    #[inline(always)]
    pub fn add_sources<I>(&mut self, links: &Links, m: &[Fixed], sources: I)
    where
        I: Iterator<Item = usize> + Clone,
    {
        self.sum_sources::<false, I>(links, m, sources);
    }

    /// Set the exposures to the sum of the rows of a matrix of terms
    /// (laid out as in [`Self::add_sources`]) of every source but
    /// `lacking`, given the matrix's sum over every source per recipient
    /// (`total`): that total less the rows of `lacking`. Integer sums, so
    /// the same bits as [`Self::add_sources`] of the other sources from
    /// zero, at every entry it sets (every country, or in list mode on a
    /// dense network the listed ones), for at most half the rows when
    /// most sources hold.
    #[inline(always)]
    pub fn add_sources_but<I>(&mut self, links: &Links, m: &[Fixed], total: &[Fixed], lacking: I)
    where
        I: Iterator<Item = usize> + Clone,
    {
        assert_eq!(total.len(), links.n);
        if links.dense && self.list {
            for &i in &self.idx {
                self.e[i as usize] = total[i as usize];
            }
        } else {
            self.e.copy_from_slice(total);
        }
        self.sum_sources::<true, I>(links, m, lacking);
    }

    /// Add (or with `SUB` subtract) the rows of `sources`: the body of
    /// [`Self::add_sources`] and [`Self::add_sources_but`].
    #[inline(always)]
    fn sum_sources<const SUB: bool, I>(&mut self, links: &Links, m: &[Fixed], sources: I)
    where
        I: Iterator<Item = usize> + Clone,
    {
        let n = links.n;
        assert_eq!(self.e.len(), n);
        let sum = |e: Fixed, v: Fixed| {
            if SUB {
                e.wrapping_sub(v)
            } else {
                e.wrapping_add(v)
            }
        };
        if !links.dense {
            for j in sources {
                let (slots, targets) = links.of(j);
                for (&v, &i) in m[slots].iter().zip(targets) {
                    // SAFETY: link targets are countries, below n = e.len().
                    let e = unsafe { self.e.get_unchecked_mut(i as usize) };
                    *e = sum(*e, v);
                }
            }
            return;
        }
        assert!(m.len() >= n * n);
        if self.list {
            // Few non-holders: only theirs.
            for &i in &self.idx {
                let i = i as usize;
                let mut acc = self.e[i];
                for j in sources.clone() {
                    acc = sum(acc, m[j * n + i]);
                }
                self.e[i] = acc;
            }
            return;
        }
        // Blocks of exposures stay in registers while every source's
        // slots j * n + block are added.
        let rows = sources.map(move |j| j * n);
        if SUB {
            add_rows(&mut self.e, m, std::iter::empty(), rows);
        } else {
            add_rows(&mut self.e, m, rows, std::iter::empty());
        }
    }

    /// Apply one step of hazard to every non-holder and append the adopters
    /// (their residual reached 0) to `out` as (k, i), ascending; their
    /// entries die. `AVX2`: the CPU has AVX2 (the dense sweep then runs
    /// eight countries at a time, with the same operations, so the same
    /// bits); `avx512` (read only with `AVX2`): it has AVX-512F as well
    /// (sixteen at a time).
    #[inline(always)]
    pub fn step<const AVX2: bool>(
        &mut self,
        k: u32,
        h: Hazard<'_>,
        avx512: bool,
        out: &mut Vec<(u32, u32)>,
    ) {
        self.sweep::<AVX2>(k, h, avx512, out, false);
    }

    /// [`Self::step`], but the adopters' entries keep their residuals
    /// (at most 0: what was left of the threshold less the step's
    /// hazard), each to be settled by [`Self::settle`] before
    /// [`Self::tidy`]: the candidates of thinning.
    #[inline(always)]
    pub fn step_keeping<const AVX2: bool>(
        &mut self,
        k: u32,
        h: Hazard<'_>,
        avx512: bool,
        out: &mut Vec<(u32, u32)>,
    ) {
        self.sweep::<AVX2>(k, h, avx512, out, true);
    }

    #[inline(always)]
    fn sweep<const AVX2: bool>(
        &mut self,
        k: u32,
        h: Hazard<'_>,
        avx512: bool,
        out: &mut Vec<(u32, u32)>,
        keep: bool,
    ) {
        let e = &self.e[..];
        let mut adopted = 0;
        if self.list {
            for (r, &i) in self.r.iter_mut().zip(&self.idx) {
                // Dead entries stay infinite.
                // SAFETY: every entry's country is below n = e.len().
                *r -= h.at(i as usize, unsafe { *e.get_unchecked(i as usize) });
                if *r <= 0.0 {
                    out.push((k, i));
                    if !keep {
                        *r = f32::INFINITY;
                    }
                    adopted += 1;
                }
            }
        } else {
            // Holders and adopters stay infinite.
            let n = self.r.len();
            let (r, e) = (&mut self.r[..n], &e[..n]);
            #[cfg(target_arch = "x86_64")]
            if AVX2 {
                adopted = if avx512 {
                    // SAFETY: the caller sets `avx512` only on CPUs with
                    // AVX-512F.
                    unsafe { sweep_avx512(r, e, h, (k, keep), out) }
                } else {
                    // SAFETY: AVX2 is only true in code compiled for CPUs
                    // with AVX2 (`advance_v3`).
                    unsafe { sweep_avx2(r, e, h, (k, keep), out) }
                };
                self.alive -= adopted;
                return;
            }
            for i in 0..n {
                r[i] -= h.at(i, e[i]);
                if r[i] <= 0.0 {
                    out.push((k, i as u32));
                    if !keep {
                        r[i] = f32::INFINITY;
                    }
                    adopted += 1;
                }
            }
        }
        self.alive -= adopted;
    }

    /// Where country i's residual sits (while it lacks the innovation).
    fn slot_of(&self, i: usize) -> usize {
        if self.list {
            self.idx
                .binary_search(&(i as u32))
                .expect("a listed country")
        } else {
            i
        }
    }

    /// The residual [`Self::step_keeping`] left country i, a candidate.
    pub fn residual(&self, i: usize) -> f32 {
        let r = self.r[self.slot_of(i)];
        debug_assert!(r <= 0.0, "{r}");
        r
    }

    /// Settle candidate i: an adopter (its entry dies), or a non-holder
    /// with residual `r`.
    pub fn settle(&mut self, i: usize, adopts: bool, r: f32) {
        let p = self.slot_of(i);
        if adopts {
            self.r[p] = f32::INFINITY;
        } else {
            self.r[p] = r;
            self.alive += 1;
        }
    }

    /// Free the row when everyone holds the innovation; move its residuals
    /// to a list once few countries lack it; compact the list once a
    /// quarter of it is dead. The order is kept.
    #[inline(always)]
    pub fn tidy(&mut self) {
        if self.is_retired() {
            *self = Row::default();
            return;
        }
        if !self.list {
            if self.alive * LIST_BELOW >= self.r.len() {
                return;
            }
            let mut idx = Vec::with_capacity(self.alive);
            let mut r = Vec::with_capacity(self.alive);
            for (i, &x) in self.r.iter().enumerate() {
                if x != f32::INFINITY {
                    idx.push(i as u32);
                    r.push(x);
                }
            }
            (self.idx, self.r, self.list) = (idx, r, true);
            return;
        }
        let dead = self.idx.len() - self.alive;
        if 4 * dead <= self.idx.len() {
            return;
        }
        let mut w = 0;
        for p in 0..self.idx.len() {
            if self.r[p] == f32::INFINITY {
                continue;
            }
            self.idx[w] = self.idx[p];
            self.r[w] = self.r[p];
            w += 1;
        }
        self.idx.truncate(w);
        self.r.truncate(w);
        if self.idx.capacity() > 4 * w + 16 {
            self.idx.shrink_to_fit();
            self.r.shrink_to_fit();
        }
    }
}

/// Add to `acc` the rows of `m` starting at the offsets `plus` and
/// subtract those at `minus` (each row at least `acc.len()` long): blocks
/// of 64 sums stay in registers while every row's entries are added, then
/// 16, 8 and one at a time. Integer sums (wrapping): any order gives the
/// same result.
#[inline(always)]
pub(crate) fn add_rows<P, M>(acc: &mut [Fixed], m: &[Fixed], plus: P, minus: M)
where
    P: Iterator<Item = usize> + Clone,
    M: Iterator<Item = usize> + Clone,
{
    let mut from = row_blocks::<64, P, M>(acc, m, 0, plus.clone(), minus.clone());
    from = row_blocks::<16, P, M>(acc, m, from, plus.clone(), minus.clone());
    from = row_blocks::<8, P, M>(acc, m, from, plus.clone(), minus.clone());
    row_blocks::<1, P, M>(acc, m, from, plus, minus);
}

/// [`add_rows`] in blocks of `W` from `from` on; returns where the whole
/// blocks end.
#[inline(always)]
fn row_blocks<const W: usize, P, M>(
    acc: &mut [Fixed],
    m: &[Fixed],
    mut from: usize,
    plus: P,
    minus: M,
) -> usize
where
    P: Iterator<Item = usize> + Clone,
    M: Iterator<Item = usize> + Clone,
{
    while from + W <= acc.len() {
        let block: &mut [Fixed; W] = (&mut acc[from..from + W]).try_into().expect("block");
        let mut sum = *block;
        for o in plus.clone() {
            let row: &[Fixed; W] = m[o + from..o + from + W].try_into().expect("block");
            for l in 0..W {
                sum[l] = sum[l].wrapping_add(row[l]);
            }
        }
        for o in minus.clone() {
            let row: &[Fixed; W] = m[o + from..o + from + W].try_into().expect("block");
            for l in 0..W {
                sum[l] = sum[l].wrapping_sub(row[l]);
            }
        }
        *block = sum;
        from += W;
    }
    from
}

/// The dense hazard sweep of [`Row::step`], eight countries at a time:
/// `r[i] -= ba[i] * max(e[i], 0) + na[i]` in f32 ([`Hazard`]; the
/// fixed-point `e[i]` converted to f32, rounded to nearest like `as f32`),
/// the same IEEE operations in the same order as the scalar loop (a
/// maximum, then separate multiplies, an add and a subtract: nothing
/// fused), so the same bits. (The maximum could differ from `f32::max`
/// only in the sign of a zero, and a converted integer is never -0.)
/// Returns the number of adopters.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn sweep_avx2(
    r: &mut [f32],
    e: &[Fixed],
    h: Hazard<'_>,
    (k, keep): (u32, bool),
    out: &mut Vec<(u32, u32)>,
) -> usize {
    use std::arch::x86_64::*;
    let n = r.len();
    assert!(e.len() == n && h.ba.len() >= n && h.na.len() >= n);
    let (rp, ep, bp, ap) = (r.as_mut_ptr(), e.as_ptr(), h.ba.as_ptr(), h.na.as_ptr());
    let zero = _mm256_setzero_ps();
    // Eight countries from `at`: their new residuals stored, and which
    // reached 0.
    let eight = |at: usize| -> u64 {
        // SAFETY: callers keep at + 8 <= n, the length of all four slices;
        // unaligned loads and stores; `r` is only reached through `rp`.
        unsafe {
            let ev = _mm256_max_ps(
                _mm256_cvtepi32_ps(_mm256_loadu_si256(ep.add(at).cast::<__m256i>())),
                zero,
            );
            let h = _mm256_add_ps(
                _mm256_mul_ps(_mm256_loadu_ps(bp.add(at)), ev),
                _mm256_loadu_ps(ap.add(at)),
            );
            let rv = _mm256_sub_ps(_mm256_loadu_ps(rp.add(at)), h);
            _mm256_storeu_ps(rp.add(at), rv);
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(rv, zero)) as u64
        }
    };
    let mut adopted = 0;
    // SAFETY: every hit is of a block inside the slice.
    let mut adopt =
        |from: usize, hits: u64| unsafe { take_hits(rp, (k, keep), from, hits, out, &mut adopted) };
    // 64 countries at a time with no call in the loop (adopters are rare):
    // their hits in one word, then the adopters.
    let mut i = 0;
    while i + 64 <= n {
        let mut hits = 0u64;
        for b in 0..8 {
            hits |= eight(i + 8 * b) << (8 * b);
        }
        adopt(i, hits);
        i += 64;
    }
    while i + 8 <= n {
        adopt(i, eight(i));
        i += 8;
    }
    while i < n {
        // SAFETY: i < n.
        let x = unsafe { *rp.add(i) - h.at(i, *ep.add(i)) };
        // SAFETY: i < n.
        unsafe { *rp.add(i) = x };
        adopt(i, u64::from(x <= 0.0));
        i += 1;
    }
    adopted
}

/// Append the adopters marked in `hits` (bit b: country `from + b`) to
/// `out` as (k, i), ascending, make their residuals (at `rp`) infinite
/// and count them in `adopted`.
///
/// # Safety
/// Every marked country is below the length of the residuals at `rp`.
#[inline(always)]
unsafe fn take_hits(
    rp: *mut f32,
    (k, keep): (u32, bool),
    from: usize,
    mut hits: u64,
    out: &mut Vec<(u32, u32)>,
    adopted: &mut usize,
) {
    while hits != 0 {
        let at = from + hits.trailing_zeros() as usize;
        out.push((k, at as u32));
        if !keep {
            // SAFETY: at is below the residuals' length (the caller's word).
            unsafe { *rp.add(at) = f32::INFINITY };
        }
        *adopted += 1;
        hits &= hits - 1;
    }
}

/// [`sweep_avx2`] sixteen countries at a time: the same operations in
/// the same order on each lane, so the same bits; the last fewer than
/// sixteen under a lane mask rather than one at a time.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sweep_avx512(
    r: &mut [f32],
    e: &[Fixed],
    h: Hazard<'_>,
    (k, keep): (u32, bool),
    out: &mut Vec<(u32, u32)>,
) -> usize {
    use std::arch::x86_64::*;
    let n = r.len();
    assert!(e.len() == n && h.ba.len() >= n && h.na.len() >= n);
    let (rp, ep, bp, ap) = (r.as_mut_ptr(), e.as_ptr(), h.ba.as_ptr(), h.na.as_ptr());
    let zero = _mm512_setzero_ps();
    // The countries at `at` of lane mask `lanes` (their new residuals
    // stored), and which of them reached 0.
    let sixteen = |at: usize, lanes: __mmask16| -> u64 {
        // SAFETY: callers keep every lane in `lanes` below n, the length
        // of all four slices; lanes off the mask are neither read nor
        // written; `r` is only reached through `rp`.
        unsafe {
            let ev = _mm512_max_ps(
                _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(lanes, ep.add(at))),
                zero,
            );
            let h = _mm512_add_ps(
                _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, bp.add(at)), ev),
                _mm512_maskz_loadu_ps(lanes, ap.add(at)),
            );
            let rv = _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, rp.add(at)), h);
            _mm512_mask_storeu_ps(rp.add(at), lanes, rv);
            u64::from(_mm512_mask_cmp_ps_mask::<_CMP_LE_OQ>(lanes, rv, zero))
        }
    };
    let mut adopted = 0;
    // SAFETY: every hit is of a lane inside the slice.
    let mut adopt =
        |from: usize, hits: u64| unsafe { take_hits(rp, (k, keep), from, hits, out, &mut adopted) };
    // 64 countries at a time with no call in the loop (adopters are rare).
    let mut i = 0;
    while i + 64 <= n {
        let mut hits = 0u64;
        for b in 0..4 {
            hits |= sixteen(i + 16 * b, !0) << (16 * b);
        }
        adopt(i, hits);
        i += 64;
    }
    while i < n {
        let lanes = if n - i >= 16 {
            !0
        } else {
            (1u16 << (n - i)) - 1
        };
        adopt(i, sixteen(i, lanes));
        i += 16;
    }
    adopted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize) -> Array2<f64> {
        let mut w = Array2::zeros((n, n));
        for j in 0..n {
            w[[j, (j + 1) % n]] = 0.5;
            w[[j, (j + n - 1) % n]] = 0.25;
        }
        w
    }

    #[test]
    fn matrix_rows_are_added_and_subtracted_in_every_block_size() {
        // 64 + 16 + 8 + 3 sums: every block size and a tail.
        let (w, rows) = (91, 7);
        let m: Vec<Fixed> = (0..rows * w + 5)
            .map(|x| {
                // Some near the ends of the range, so that sums wrap.
                let v = ((x * 7919) % 2001) as Fixed - 1000;
                if x % 13 == 0 {
                    v.wrapping_add(Fixed::MAX)
                } else {
                    v
                }
            })
            .collect();
        let start: Vec<Fixed> = (0..w as Fixed).map(|i| i * 3 - 50).collect();
        let (plus, minus) = ([0, 3 * w, 6 * w + 5, 3 * w], [w, 5 * w + 2]);
        let mut acc = start.clone();
        add_rows(&mut acc, &m, plus.iter().copied(), minus.iter().copied());
        for (c, (&got, &s)) in acc.iter().zip(&start).enumerate() {
            let p = plus.iter().fold(s, |a, &o| a.wrapping_add(m[o + c]));
            let want = minus.iter().fold(p, |a, &o| a.wrapping_sub(m[o + c]));
            assert_eq!(got, want, "column {c}");
        }
    }

    #[test]
    fn sparse_and_dense_rows_add_the_same_exposures() {
        // Blocks of 16 countries, a half block and a tail of two.
        let n = 90;
        let w = ring(n);
        let sparse = Links::new(&w);
        assert!(!sparse.dense);
        let mut dense = sparse.clone();
        dense.dense = true;
        dense.slot = (0..(n * n) as u32).collect();
        let full: Vec<f64> = w.iter().copied().collect();
        let w = &w;
        let per_link: Vec<f64> = (0..n)
            .flat_map(|j| sparse.of(j).1.iter().map(move |&i| w[[j, i as usize]]))
            .collect();
        // Few holders (residuals by country) and many (a list), with
        // neighbours lacking it (whose terms reach each other).
        for holders in [
            vec![0usize, 5, 17, 38, 89],
            (0..n).filter(|i| i % 29 != 2).collect(),
            (0..n).filter(|i| !(40..43).contains(i)).collect(),
        ] {
            let make = || {
                Row::new((0..n).map(|i| i as f32 + 1.0).collect(), |i| {
                    holders.contains(&i)
                })
            };
            let (mut a, mut b, mut c) = (make(), make(), make());
            assert_eq!(a.list, holders.len() > 30);
            let sources = holders.iter().copied();
            // A scale that leaves fractions of a unit to round.
            let scale = 3.0;
            let fixed = |v: &[f64]| -> Vec<Fixed> { v.iter().map(|&x| fix(x * scale)).collect() };
            let (per_link, full) = (fixed(&per_link), fixed(&full));
            a.add_sources(&sparse, &per_link, sources.clone());
            b.add_sources(&dense, &full, sources.clone());
            for j in sources.rev() {
                c.add_sources(&dense, &full, std::iter::once(j));
            }
            // Every source's sum less those that lack it: the same bits at
            // every entry, sparse and dense.
            let lacking = (0..n).filter(|j| !holders.contains(j));
            let mut total_sparse: Vec<Fixed> = vec![0; n];
            let mut total_dense: Vec<Fixed> = vec![0; n];
            for j in 0..n {
                let (slots, targets) = sparse.of(j);
                for (&v, &i) in per_link[slots].iter().zip(targets) {
                    total_sparse[i as usize] += v;
                }
                for i in 0..n {
                    total_dense[i] += full[j * n + i];
                }
            }
            let (mut d, mut f) = (make(), make());
            d.add_sources_but(&sparse, &per_link, &total_sparse, lacking.clone());
            f.add_sources_but(&dense, &full, &total_dense, lacking);
            assert_eq!(d.e, a.e);
            assert_eq!(f.e, b.e);
            for i in 0..n {
                // 1.5 and 0.75 units: 2 and 1 (ties to even, nearest).
                let expect: Fixed = holders.iter().map(|&j| fix(w[[j, i]] * scale)).sum();
                match a.exposure_of(i) {
                    None => assert!(holders.contains(&i)),
                    Some(e) => {
                        assert_eq!(e, expect, "country {i}");
                        assert_eq!(b.exposure_of(i), Some(e));
                        assert_eq!(c.exposure_of(i), Some(e));
                    }
                }
            }
        }
    }

    #[test]
    fn fix_rounds_to_nearest_even_within_range() {
        for x in [
            0.0,
            0.49,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            1e9 + 0.5,
            -1e9 - 0.5,
            3.7,
            -3.7,
        ] {
            assert_eq!(f64::from(fix(x)), x.round_ties_even(), "{x}");
        }
        assert_eq!(fix(2_147_483_647.0), i32::MAX);
        assert_eq!(fix(-2_147_483_648.0), i32::MIN);
    }

    #[test]
    fn gate_products_read_back_the_same_bits_coded_or_not() {
        // Few distinct products (NaN = uncovered among them): coded.
        let few: Vec<f64> = (0..500)
            .map(|i| [f64::NAN, 0.25, 0.1 / 1.5, 1.0][i % 7 % 4])
            .collect();
        let f = Factor::new(few.clone());
        assert!(matches!(f, Factor::Coded { .. }));
        // Over 256 distinct products: kept as they are.
        let many: Vec<f64> = (0..600).map(|i| 1.0 / (2.0 + (i % 300) as f64)).collect();
        let g = Factor::new(many.clone());
        assert!(matches!(g, Factor::Plain(_)));
        // Setting slots one by one, past 256 distinct values too.
        let mut h = Factor::new(few.clone());
        let mut expect = few.clone();
        for (at, e) in expect.iter_mut().enumerate().take(300) {
            let x = 1.0 / (3.0 + at as f64);
            h.set(at, x);
            *e = x;
        }
        assert!(matches!(h, Factor::Plain(_)));
        for (factor, values) in [(f, few), (g, many), (h, expect)] {
            for (at, x) in values.iter().enumerate() {
                assert_eq!(factor.at(at).to_bits(), x.to_bits(), "slot {at}");
            }
        }
    }

    #[test]
    fn covered_slots_are_listed_in_order_whatever_the_coding() {
        // Long uncovered runs (skipped eight at a time), isolated covered
        // slots inside blocks, a short tail, and a factor with no NaN.
        let mut sparse = vec![f64::NAN; 203];
        for at in [0, 7, 8, 63, 64, 65, 150, 202] {
            sparse[at] = 0.5 / (1.0 + at as f64 % 3.0);
        }
        let full: Vec<f64> = (0..37).map(|i| [0.25, 0.5][i % 2]).collect();
        let many: Vec<f64> = (0..600)
            .map(|i| {
                if i % 5 == 0 {
                    f64::NAN
                } else {
                    1.0 / (2.0 + i as f64)
                }
            })
            .collect();
        for g in [sparse, full, many] {
            let f = Factor::new(g.clone());
            for range in [0..g.len(), 3..g.len() - 2, 9..9] {
                let mut seen = Vec::new();
                f.for_covered(range.clone(), |at, x| seen.push((at, x.to_bits())));
                let expect: Vec<(usize, u64)> = range
                    .filter(|&at| !g[at].is_nan())
                    .map(|at| (at, g[at].to_bits()))
                    .collect();
                assert_eq!(seen, expect);
            }
        }
    }

    #[test]
    fn fixed_scale_keeps_the_largest_exposure_within_half_the_range() {
        let half = (1u64 << 30) as f64;
        for m in [1.0, 1.5, 2.0, 101.0, 1e-3, 7e12] {
            let s = fixed_scale(m);
            assert_eq!(libm::log2(s).fract(), 0.0, "a power of two");
            assert!(m * s <= half && m * s * 2.0 > half, "{m}: {s}");
        }
        assert_eq!(fixed_scale(1.0), half);
        assert_eq!(fixed_scale(0.0), half);
    }

    /// Hazard 1 per step for the countries in `on`, none for the others.
    fn only<'a>(a: &'a [f32], zeros: &'a [f32]) -> Hazard<'a> {
        Hazard { ba: zeros, na: a }
    }

    #[test]
    fn adopters_die_and_the_list_is_compacted_in_order() {
        // Countries 0..128, all but 0 1 2 4 5 6 7 hold: a list.
        let n = 128;
        let zeros = vec![0.0; n];
        let mut a = vec![0.0; n];
        let mut row = Row::new((0..n).map(|i| i as f32 + 0.5).collect(), |i| {
            i == 3 || i >= 8
        });
        assert!(row.list);
        let mut out = Vec::new();
        // Hazard 1 for country 1 only: its residual 1.5 -> 0.5, no adoption.
        a[1] = 1.0;
        row.step::<false>(9, only(&a, &zeros), false, &mut out);
        assert!(out.is_empty());
        row.step::<false>(9, only(&a, &zeros), false, &mut out);
        assert_eq!(out, vec![(9, 1)]);
        row.tidy();
        assert_eq!(row.len(), 7, "one dead entry in seven is kept");
        assert_eq!(row.exposure_of(1), None);
        assert_eq!(row.exposure_of(3), None);
        assert_eq!(row.exposure_of(2), Some(0));
        out.clear();
        a[1] = 0.0;
        a[6] = 10.0;
        row.step::<false>(9, only(&a, &zeros), false, &mut out);
        assert_eq!(out, vec![(9, 6)]);
        row.tidy();
        assert_eq!(row.idx, vec![0, 2, 4, 5, 7]);
        assert_eq!(row.r, vec![0.5, 2.5, 4.5, 5.5, 7.5]);
        out.clear();
        row.step::<false>(9, only(&[100.0; 128], &zeros), false, &mut out);
        assert_eq!(out.len(), 5);
        assert!(row.is_retired());
        row.tidy();
        assert_eq!(row.len(), 0);
        assert!(row.e.is_empty());
    }

    #[test]
    fn dense_rows_adopt_in_order_and_move_to_a_list() {
        // 40 countries, 0 holds; exposure 1 for everyone.
        let n = 40;
        let mut row = Row::new((0..n).map(|i| i as f32 + 0.5).collect(), |i| i == 0);
        assert!(!row.list);
        row.e.fill(1);
        let ba = vec![1.0; n];
        let a: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        // Hazard 1 + (1 for even countries): residuals 0.5, 1.5, ... fall
        // by 2 (even) or 1 (odd) a step.
        let h = Hazard { ba: &ba, na: &a };
        for (avx2, avx512) in [(false, false), (true, false), (true, true)] {
            #[cfg(target_arch = "x86_64")]
            if avx2 && !std::arch::is_x86_feature_detected!("avx2")
                || avx512 && !std::arch::is_x86_feature_detected!("avx512f")
            {
                continue;
            }
            #[cfg(not(target_arch = "x86_64"))]
            if avx2 {
                continue;
            }
            let mut row = row.clone();
            let mut out = Vec::new();
            if avx2 {
                row.step::<true>(3, h, avx512, &mut out);
            } else {
                row.step::<false>(3, h, false, &mut out);
            }
            // Country 1: 1.5 - 1 > 0; country 2: 2.5 - 2 > 0.
            assert!(out.is_empty());
            if avx2 {
                row.step::<true>(3, h, avx512, &mut out);
            } else {
                row.step::<false>(3, h, false, &mut out);
            }
            // 1: 0.5 - 1 <= 0, 2: 0.5 - 2, 4: 4.5 - 4 > 0, 3: 3.5 - 2 > 0.
            assert_eq!(out, vec![(3, 1), (3, 2)]);
            assert_eq!(row.exposure_of(0), None);
            assert_eq!(row.exposure_of(1), None);
            assert_eq!(row.exposure_of(3), Some(1));
            // Every lane stepped, the last (a part block) included: odd
            // countries lose 1 a step, even ones 2.
            for i in 3..n {
                let fall = if i % 2 == 0 { 4.0 } else { 2.0 };
                assert_eq!(row.r[i], i as f32 + 0.5 - fall, "country {i}");
            }
            row.tidy();
            assert!(!row.list);
        }
        // All but two of the 39 non-holders adopt: fewer than one in
        // sixteen countries lacks it, so the row becomes a list.
        let mut out = Vec::new();
        let big = vec![1e9; n];
        let h = Hazard { ba: &ba, na: &big };
        row.r[5] = f32::MAX;
        row.r[11] = f32::MAX;
        row.step::<false>(4, h, false, &mut out);
        assert_eq!(out.len(), 37);
        row.tidy();
        assert!(row.list);
        assert_eq!(row.idx, vec![5, 11]);
        assert_eq!(row.exposure_of(5), Some(1));
        assert_eq!(row.exposure_of(6), None);
    }
}
