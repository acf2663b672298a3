//! Storage of the diffusion state: one compact row per live innovation
//! holding only its non-holders, and the network's links in the layout the
//! exposure updates read.

use ndarray::Array2;

/// Marks "no entry" in position maps and pair slots.
pub(crate) const NONE: u32 = u32::MAX;

/// The network's links j -> i (w_ji != 0), and how gate-class matrices are
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
    /// slot[j * n + i]: where the value of j -> i sits in a class matrix,
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

    /// Every slot of source j (all n when dense).
    #[inline]
    pub fn slots(&self, j: usize) -> std::ops::Range<usize> {
        if self.dense {
            j * self.n..(j + 1) * self.n
        } else {
            self.start[j]..self.start[j + 1]
        }
    }

    /// The source a slot belongs to.
    pub fn source_of(&self, slot: usize) -> usize {
        if self.dense {
            slot / self.n
        } else {
            self.start.partition_point(|&s| s <= slot) - 1
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
    pub factor: Option<Vec<f64>>,
}

impl Gates {
    /// The gate of one slot: the covering regimes' product, else the
    /// chilling factor if the pair is chilled, else 1.
    #[inline]
    pub fn effective_at(&self, slot: usize, chilled: bool) -> f64 {
        let g = self.factor.as_ref().map_or(f64::NAN, |f| f[slot]);
        if !g.is_nan() {
            g
        } else if chilled {
            self.chill
        } else {
            1.0
        }
    }

    /// The gate of every slot given the chilled slots: the covering
    /// regimes' product, else the chilling factor on chilled pairs, else 1.
    /// None when every gate is 1.
    pub fn effective(&self, chilled: &[bool]) -> Option<Vec<f64>> {
        let chills = self.chill != 1.0 && chilled.iter().any(|&c| c);
        match &self.factor {
            None if !chills => None,
            None => Some(
                chilled
                    .iter()
                    .map(|&c| if c { self.chill } else { 1.0 })
                    .collect(),
            ),
            Some(f) => Some(
                f.iter()
                    .zip(chilled)
                    .map(|(&g, &c)| {
                        if !g.is_nan() {
                            g
                        } else if c && chills {
                            self.chill
                        } else {
                            1.0
                        }
                    })
                    .collect(),
            ),
        }
    }
}

/// A class's effective gates at every slot, and for every source whether
/// all its gates are 1 (so its rows can be read without them).
#[derive(Debug, Clone)]
pub(crate) struct Eff {
    pub g: Vec<f64>,
    pub ones: Vec<bool>,
}

impl Eff {
    pub fn new(g: Vec<f64>, links: &Links) -> Self {
        let ones = (0..links.n)
            .map(|j| links.slots(j).all(|at| g[at] == 1.0))
            .collect();
        Eff { g, ones }
    }

    /// Set the gates of `slots` to `gate(slot)` and update the sources they
    /// belong to.
    pub fn patch(&mut self, links: &Links, slots: &[usize], gate: impl Fn(usize) -> f64) {
        for &at in slots {
            self.g[at] = gate(at);
        }
        let mut sources: Vec<usize> = slots.iter().map(|&at| links.source_of(at)).collect();
        sources.dedup();
        for j in sources {
            self.ones[j] = links.slots(j).all(|at| self.g[at] == 1.0);
        }
    }
}

/// A gate class's matrix M(j, i) = (a_ji * boost) * gate(j, i), read at the
/// slots of [`Links`] without being stored (a gate of 1 is left out: x * 1
/// is x exactly).
#[derive(Clone, Copy)]
pub(crate) struct ClassMatrix<'a> {
    a: &'a [f64],
    boost: f64,
    gate: Option<&'a [f64]>,
    /// Per source: all its gates are 1.
    ones: &'a [bool],
}

impl<'a> ClassMatrix<'a> {
    pub fn new(a: &'a [f64], boost: f64, eff: Option<&'a Eff>) -> Self {
        if let Some(e) = eff {
            assert_eq!(e.g.len(), a.len());
        }
        ClassMatrix {
            a,
            boost,
            gate: eff.map(|e| &e.g[..]),
            ones: eff.map_or(&[], |e| &e.ones[..]),
        }
    }

    /// The gates of source j's slots, None when they are all 1.
    #[inline]
    fn gates_of(&self, j: usize) -> Option<&'a [f64]> {
        self.gate.filter(|_| !self.ones[j])
    }

    #[inline]
    pub fn at(&self, slot: usize) -> f64 {
        let x = self.a[slot] * self.boost;
        match self.gate {
            Some(g) => x * g[slot],
            None => x,
        }
    }
}

/// The non-holders of one live innovation: their residuals (threshold
/// minus cumulative hazard; i adopts when it reaches 0) in a compact list
/// ascending by country, and the exposure E_ik of every country in a dense
/// vector indexed by country (holders' values are kept up to date too but
/// never read), so that a new holder's links add straight into it.
/// Adopters stay in the list as dead entries (infinite residual) until a
/// quarter of it is dead, then it is compacted. Retired rows (everyone
/// holds) are empty.
#[derive(Debug, Default, Clone)]
pub(crate) struct Row {
    pub idx: Vec<u32>,
    pub r: Vec<f64>,
    /// Exposure by country: n values, or none when retired.
    pub e: Vec<f64>,
    /// Dead entries in the list.
    dead: usize,
}

impl Row {
    /// A new row from the thresholds of every country (holders included,
    /// so that the stream is consumed the same way whoever holds).
    pub fn new(thresholds: impl Iterator<Item = f64>, is_holder: impl Fn(usize) -> bool) -> Self {
        let (n, _) = thresholds.size_hint();
        let mut row = Row {
            idx: Vec::with_capacity(n),
            r: Vec::with_capacity(n),
            e: Vec::new(),
            dead: 0,
        };
        let mut count = 0;
        for (i, x) in thresholds.enumerate() {
            count += 1;
            if !is_holder(i) {
                row.idx.push(i as u32);
                row.r.push(x);
            }
        }
        if row.idx.is_empty() {
            return Row::default();
        }
        row.e = vec![0.0; count];
        row
    }

    /// Ask the cache for the first kilobyte of the row's list arrays and up
    /// to 16 KiB of its exposure vector (which a sparse network's link
    /// updates visit out of order): a hint that changes no value. Rows
    /// live in separate heap blocks, so the hardware prefetcher cannot
    /// guess the next one; asking while the previous row is being updated
    /// hides most of that latency (see results/BENCHMARKS.md).
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            const LINE: usize = 64;
            const MAX: usize = 1024;
            fn lines<T>(v: &[T], max: usize) {
                let bytes = std::mem::size_of_val(v).min(max);
                let base = v.as_ptr().cast::<i8>();
                for at in (0..bytes).step_by(LINE) {
                    // SAFETY: `at` is inside the slice, and a prefetch never
                    // faults or writes.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(at)) };
                }
            }
            lines(&self.idx, MAX);
            lines(&self.r, MAX);
            lines(&self.e, 16 * MAX);
        }
    }

    /// Entries in the list, dead ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether every country holds the innovation.
    #[inline]
    pub fn is_retired(&self) -> bool {
        self.idx.len() == self.dead
    }

    /// Exposure of country i, None when i holds the innovation.
    pub fn exposure_of(&self, i: usize) -> Option<f64> {
        let p = self.idx.binary_search(&(i as u32)).ok()?;
        (self.r[p] != f64::INFINITY).then(|| self.e[i])
    }

    /// Add source j's row of a class matrix to the exposures. Skipped terms
    /// are exact zeros (no link), so every non-holder's sum is the same
    /// whichever way the row is visited.
    #[inline(always)]
    pub fn add_source(&mut self, links: &Links, m: &ClassMatrix<'_>, j: usize) {
        let n = links.n;
        assert_eq!(self.e.len(), n);
        if links.dense {
            // Slots j * n .. (j + 1) * n: all of them while many countries
            // lack the innovation (a straight vector loop), else only the
            // non-holders'.
            let a = &m.a[j * n..(j + 1) * n];
            let g = m.gates_of(j).map(|g| &g[j * n..(j + 1) * n]);
            let e = &mut self.e[..];
            if 4 * (self.idx.len() - self.dead) >= n {
                match g {
                    Some(g) => {
                        for ((e, &a), &g) in e.iter_mut().zip(a).zip(g) {
                            *e += (a * m.boost) * g;
                        }
                    }
                    None => {
                        for (e, &a) in e.iter_mut().zip(a) {
                            *e += a * m.boost;
                        }
                    }
                }
            } else {
                for &i in &self.idx {
                    let i = i as usize;
                    e[i] += match g {
                        Some(g) => (a[i] * m.boost) * g[i],
                        None => a[i] * m.boost,
                    };
                }
            }
        } else {
            let (slots, targets) = links.of(j);
            let (a, g) = (&m.a[slots.clone()], m.gates_of(j).map(|g| &g[slots]));
            for (q, &i) in targets.iter().enumerate() {
                let x = a[q] * m.boost;
                let v = match g {
                    Some(g) => x * g[q],
                    None => x,
                };
                // SAFETY: link targets are countries, below n = e.len().
                unsafe { *self.e.get_unchecked_mut(i as usize) += v };
            }
        }
    }

    /// Apply one step of hazard, `hazard(i, e_i)`, to every non-holder and
    /// append the adopters (their residual reached 0) to `out` as (k, i),
    /// ascending; their entries die.
    #[inline(always)]
    pub fn step(&mut self, k: u32, hazard: impl Fn(usize, f64) -> f64, out: &mut Vec<(u32, u32)>) {
        let e = &self.e[..];
        for (r, &i) in self.r.iter_mut().zip(&self.idx) {
            // Dead entries stay infinite.
            // SAFETY: every entry's country is below n = e.len().
            *r -= hazard(i as usize, unsafe { *e.get_unchecked(i as usize) });
            if *r <= 0.0 {
                out.push((k, i));
                *r = f64::INFINITY;
                self.dead += 1;
            }
        }
    }

    /// Compact the list once a quarter of it is dead (or free the row when
    /// all is), keeping the order.
    #[inline(always)]
    pub fn tidy(&mut self) {
        if self.is_retired() {
            *self = Row::default();
            return;
        }
        if 4 * self.dead <= self.idx.len() {
            return;
        }
        let mut w = 0;
        for p in 0..self.idx.len() {
            if self.r[p] == f64::INFINITY {
                continue;
            }
            self.idx[w] = self.idx[p];
            self.r[w] = self.r[p];
            w += 1;
        }
        self.idx.truncate(w);
        self.r.truncate(w);
        self.dead = 0;
        if self.idx.capacity() > 4 * w + 16 {
            self.idx.shrink_to_fit();
            self.r.shrink_to_fit();
        }
    }
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
    fn sparse_and_dense_rows_add_the_same_exposures() {
        let n = 12;
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
        let holders = [0usize, 5];
        let make = || Row::new((0..n).map(|i| i as f64 + 1.0), |i| holders.contains(&i));
        let (mut a, mut b) = (make(), make());
        for &j in &holders {
            a.add_source(&sparse, &ClassMatrix::new(&per_link, 1.0, None), j);
            b.add_source(&dense, &ClassMatrix::new(&full, 1.0, None), j);
        }
        assert_eq!(a.e, b.e);
        for i in 0..n {
            let expect = holders.iter().map(|&j| w[[j, i]]).sum::<f64>();
            match a.exposure_of(i) {
                None => assert!(holders.contains(&i)),
                Some(e) => assert_eq!(e, expect, "country {i}"),
            }
        }
    }

    #[test]
    fn adopters_die_and_the_list_is_compacted_in_order() {
        // Countries 0..8, 3 holds: entries 0 1 2 4 5 6 7.
        let mut row = Row::new((0..8).map(|i| f64::from(i) + 0.5), |i| i == 3);
        let mut out = Vec::new();
        // Hazard 1 for country 1 only: its residual 1.5 -> 0.5, no adoption.
        row.step(9, |i, _| if i == 1 { 1.0 } else { 0.0 }, &mut out);
        assert!(out.is_empty());
        row.step(9, |i, _| if i == 1 { 1.0 } else { 0.0 }, &mut out);
        assert_eq!(out, vec![(9, 1)]);
        row.tidy();
        assert_eq!(row.len(), 7, "one dead entry in seven is kept");
        assert_eq!(row.exposure_of(1), None);
        assert_eq!(row.exposure_of(3), None);
        assert_eq!(row.exposure_of(2), Some(0.0));
        out.clear();
        row.step(9, |i, _| if i == 6 { 10.0 } else { 0.0 }, &mut out);
        assert_eq!(out, vec![(9, 6)]);
        row.tidy();
        assert_eq!(row.idx, vec![0, 2, 4, 5, 7]);
        assert_eq!(row.r, vec![0.5, 2.5, 4.5, 5.5, 7.5]);
        out.clear();
        row.step(9, |_, _| 100.0, &mut out);
        assert_eq!(out.len(), 5);
        assert!(row.is_retired());
        row.tidy();
        assert_eq!(row.len(), 0);
        assert!(row.e.is_empty());
    }
}
