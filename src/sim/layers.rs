//! Gate-class terms as a shared base plus per-class differences.
//!
//! The term of a linked pair j -> i for an innovation of gate class c is
//! `fix((a_ji * boost * 2^F) * gate)`, the gate being the covering
//! regimes' product where c's regimes cover the pair ([`Gates`]'s factor),
//! else the chilling factor on a chilled pair, else 1. Away from the pairs a class's
//! regimes cover, the term depends only on its boost and chilling factor,
//! which classes of one sector share: a [`Family`] keeps that term at every
//! slot once, and a class keeps only its covered slots, as differences from
//! its family's term ([`Layer`]). Per step the families are patched at the
//! pairs whose weight or chilled flag moved, and each class at its covered
//! moved pairs: in a world with many classes (every counter-regime makes
//! some) that is a few per cent of the work of patching a whole matrix per
//! class. Base plus difference is the class's term exactly (integer
//! arithmetic), so exposures are the same bits.

use std::sync::Arc;

use fixedbitset::FixedBitSet;

use super::rows::{Factor, Fixed, Gates, Links, fix};

/// Classes sharing a boost and a chilling factor, and their term at every
/// slot where no regime covers the pair.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// The boost times 2^F, and the chilling factor (bits: the key).
    pub b: f64,
    pub chill: f64,
    /// Per slot of [`Links`], in fixed point.
    pub base: Vec<Fixed>,
    /// Per recipient, the sum of the base over every source (wrapping
    /// integer sums, kept up to date by [`Self::patch`]), so that a row
    /// held by most countries is summed as this total less the rows of
    /// the sources that lack it ([`super::rows::Row::add_sources_but`]).
    pub total: Vec<Fixed>,
}

impl Family {
    pub fn new(
        boost: f64,
        chill: f64,
        scale: f64,
        a: &[f64],
        chilled: &[bool],
        links: &Links,
    ) -> Self {
        let b = boost * scale;
        let base: Vec<Fixed> = a
            .iter()
            .zip(chilled)
            .map(|(&a, &ch)| Self::plain(b, chill, a, ch))
            .collect();
        // A slot's recipient: its column when dense, its link's target
        // otherwise (slots follow the links in order).
        let mut total: Vec<Fixed> = vec![0; links.n];
        if links.dense {
            for row in base.chunks_exact(links.n) {
                for (t, &x) in total.iter_mut().zip(row) {
                    *t = t.wrapping_add(x);
                }
            }
        } else {
            for (&x, &i) in base.iter().zip(&links.targets) {
                let t = &mut total[i as usize];
                *t = t.wrapping_add(x);
            }
        }
        Family {
            b,
            chill,
            base,
            total,
        }
    }

    /// Whether a class with these gates belongs here.
    pub fn holds(&self, g: &Gates, scale: f64) -> bool {
        (g.boost * scale).to_bits() == self.b.to_bits() && g.chill.to_bits() == self.chill.to_bits()
    }

    /// The term of a slot no regime covers: the same operations as
    /// `fix((a * b) * effective)` with the effective gate chill or 1.
    #[inline]
    fn plain(b: f64, chill: f64, a: f64, chilled: bool) -> Fixed {
        fix((a * b) * if chilled { chill } else { 1.0 })
    }

    /// The term at slot `at`, weight `a`, of a class of this family with
    /// gate products `factor` (covered where not NaN): what its layer
    /// holds there over the base, or the base's own term.
    #[inline]
    pub fn term(&self, factor: Option<&Factor>, at: usize, a: f64, chilled: bool) -> Fixed {
        match factor.map(|f| f.at(at)) {
            Some(g) if !g.is_nan() => fix((a * self.b) * g),
            _ => Self::plain(self.b, self.chill, a, chilled),
        }
    }

    /// Bring the base to this step at the moved slots `by_slot` (slot,
    /// index among the moved pairs), given this step's weights and chilled
    /// flags there (`a_moved`, `chilled_moved`, in the same order) and
    /// each moved pair's recipient (`to_of`, by index); return the change
    /// at each moved pair by its index, followed by `pad` zeros.
    pub fn patch(
        &mut self,
        (by_slot, to_of): (&[(u32, u32)], &[u32]),
        a_moved: &[f64],
        chilled_moved: &[bool],
        pad: usize,
    ) -> Vec<Fixed> {
        let mut d = vec![0; by_slot.len() + pad];
        for ((&(at, q), &a), &ch) in by_slot.iter().zip(a_moved).zip(chilled_moved) {
            let new = Self::plain(self.b, self.chill, a, ch);
            let old = &mut self.base[at as usize];
            let change = new.wrapping_sub(*old);
            d[q as usize] = change;
            *old = new;
            let t = &mut self.total[to_of[q as usize] as usize];
            *t = t.wrapping_add(change);
        }
        d
    }
}

/// The linked pairs a class's regimes cover: by source, source j's are
/// entries `start[j]..start[j + 1]` of `to` (the target) and `at` (the
/// slot), ascending. Classes with the same covering regimes (in
/// different sectors or buckets: some 50 sets among 160 classes in
/// medium_policy.toml) share one, kept while in use and for 4 steps
/// after, so the moved slots among them are found once a step for all
/// ([`Cover::moved`]) and a class new in use rarely scans for its own.
#[derive(Debug)]
pub(crate) struct Cover {
    start: Vec<u32>,
    to: Vec<u32>,
    at: Vec<u32>,
    /// The covered slots as a bitset over every slot, with the count of
    /// covered slots in the words before each, where the cover has more
    /// slots than the bitset has words: [`Cover::moved`] then goes word
    /// by word rather than slot by slot.
    words: Option<SlotWords>,
}

/// A set of slots as bitset words, and per word the count of set bits in
/// the words before it (so a slot's rank is that count plus the set bits
/// below it in its word).
#[derive(Debug, PartialEq)]
struct SlotWords {
    bits: Vec<u64>,
    rank: Vec<u32>,
}

/// Covers are the same when they cover the same slots (a slot is one
/// source and one target): compared by slot alone, after their counts.
impl PartialEq for Cover {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Cover {}

impl Cover {
    /// The slots where the class's gate factor is not NaN (none without
    /// a factor).
    pub fn new(g: &Gates, links: &Links) -> Self {
        let n = links.n;
        let mut cover = Cover {
            start: Vec::with_capacity(n + 1),
            to: Vec::new(),
            at: Vec::new(),
            words: None,
        };
        cover.start.push(0);
        for j in 0..n {
            if let Some(f) = &g.factor {
                let (slots, targets) = links.of(j);
                f.for_covered(links.slots_of(j), |at, _| {
                    let i = if links.dense {
                        at - j * n
                    } else {
                        targets[at - slots.start] as usize
                    };
                    cover.to.push(i as u32);
                    cover.at.push(at as u32);
                });
            }
            cover.start.push(cover.at.len() as u32);
        }
        cover.index_words(links.values());
        cover
    }

    /// Make [`Cover::words`] where the cover has more slots than a bitset
    /// of `slots` has words.
    fn index_words(&mut self, slots: usize) {
        let words = slots.div_ceil(64);
        if self.at.len() <= words {
            return;
        }
        let mut bits = vec![0u64; words];
        for &at in &self.at {
            bits[at as usize / 64] |= 1 << (at % 64);
        }
        self.rank_words(bits);
    }

    /// [`Cover::words`] from the bitset of the covered slots.
    fn rank_words(&mut self, bits: Vec<u64>) {
        let mut count = 0;
        let rank = bits
            .iter()
            .map(|w| {
                let r = count;
                count += w.count_ones();
                r
            })
            .collect();
        self.words = Some(SlotWords { bits, rank });
    }

    /// The cover of a class whose gates (`g`) can differ from those of a
    /// near twin (`parent_g`, its cover `parent`) only at `slots` (slot,
    /// source, target; ascending by slot, no repeats): the twin's, changed
    /// only there (the same as [`Cover::new`] for the class, for a look at
    /// those slots and a copy rather than a pass over every slot). None
    /// when it covers the same slots as the twin's.
    pub fn from_twin(
        parent: &Cover,
        parent_g: &Gates,
        g: &Gates,
        slots: &[(usize, u32, u32)],
        slots_total: usize,
    ) -> Option<Cover> {
        let covered_in =
            |g: &Gates, at: usize| g.factor.as_ref().is_some_and(|f| !f.at(at).is_nan());
        if slots
            .iter()
            .all(|&(at, _, _)| covered_in(g, at) == covered_in(parent_g, at))
        {
            return None;
        }
        // Runs of the twin's entries copied whole between the slots that
        // differ; source j's entries start later by the net count of
        // entries added and removed at the slots of the sources below j.
        let len = parent.at.len() + slots.len();
        let mut cover = Cover {
            start: parent.start.clone(),
            to: Vec::with_capacity(len),
            at: Vec::with_capacity(len),
            words: None,
        };
        let mut shift = vec![0i64; parent.start.len()];
        let mut from = 0;
        for &(at, j, i) in slots {
            // The slots ascend: searched from the last one's place on.
            let pos = from + parent.at[from..].partition_point(|&x| (x as usize) < at);
            cover.to.extend_from_slice(&parent.to[from..pos]);
            cover.at.extend_from_slice(&parent.at[from..pos]);
            let was = parent.at.get(pos).is_some_and(|&x| x as usize == at);
            from = if was { pos + 1 } else { pos };
            let now = covered_in(g, at);
            if now {
                cover.to.push(i);
                cover.at.push(at as u32);
            }
            shift[j as usize + 1] += i64::from(now) - i64::from(was);
        }
        cover.to.extend_from_slice(&parent.to[from..]);
        cover.at.extend_from_slice(&parent.at[from..]);
        let mut net = 0;
        for (s, d) in cover.start.iter_mut().zip(&shift) {
            net += d;
            *s = u32::try_from(i64::from(*s) + net).expect("a count of entries");
        }
        debug_assert_eq!(
            *cover.start.last().expect("n + 1 entries") as usize,
            cover.at.len()
        );
        // The twin's bitset, where it has one, changed at the slots.
        match &parent.words {
            Some(words) if cover.at.len() > words.bits.len() => {
                let mut bits = words.bits.clone();
                for &(at, _, _) in slots {
                    let bit = 1 << (at % 64);
                    match covered_in(g, at) {
                        true => bits[at / 64] |= bit,
                        false => bits[at / 64] &= !bit,
                    }
                }
                cover.rank_words(bits);
            }
            _ => cover.index_words(slots_total),
        }
        Some(cover)
    }

    /// The covered slots that moved (`moved_bits`: a bitset of the moved
    /// slots; `moved_at[slot]`: the slot's position in `by_slot`), as
    /// (index in this cover, moved-pair index), ascending.
    pub fn moved(
        &self,
        moved_bits: &[u64],
        moved_at: &[u32],
        by_slot: &[(u32, u32)],
    ) -> Vec<(u32, u32)> {
        let hit = |pos: u32, at: usize| (pos, by_slot[moved_at[at] as usize].1);
        let mut hits = Vec::new();
        if let Some(SlotWords { bits, rank }) = &self.words {
            // Word by word: the covered slots are ascending, so a slot's
            // index in the cover is its rank among the covered bits.
            for (w, ((&c, &m), &r)) in bits.iter().zip(moved_bits).zip(rank).enumerate() {
                let mut x = c & m;
                while x != 0 {
                    let b = x.trailing_zeros();
                    x &= x - 1;
                    let pos = r + (c & ((1u64 << b) - 1)).count_ones();
                    let at = w * 64 + b as usize;
                    hits.push(hit(pos, at));
                }
            }
            return hits;
        }
        for (pos, &at) in self.at.iter().enumerate() {
            let at = at as usize;
            if moved_bits[at / 64] & (1 << (at % 64)) != 0 {
                hits.push(hit(pos as u32, at));
            }
        }
        hits
    }
}

/// A class's covered pairs and, at each, its term minus its family's.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// Index of the class's [`Family`].
    pub family: usize,
    pub cover: Arc<Cover>,
    /// The class's term minus the family's, per covered slot.
    delta: Vec<Fixed>,
    /// Per recipient, the sum of `delta` over its covered slots (wrapping
    /// integer sums, kept up to date by [`Self::patch`]; empty when
    /// nothing is covered), so that a row whose holders are the sources
    /// of most covered slots is summed as this less the slots of the
    /// sources that lack it ([`Self::add_held`]).
    total: Vec<Fixed>,
}

impl Layer {
    /// From the class's gates (covered where the factor is not NaN), its
    /// cover (the slots where the factor is not NaN: [`Cover::new`] or a
    /// class's with the same covering regimes), this step's weights `a`
    /// and its family, already at this step.
    pub fn new(family: usize, fam: &Family, g: &Gates, a: &[f64], cover: Arc<Cover>) -> Self {
        let delta = match &g.factor {
            Some(f) => cover
                .at
                .iter()
                .map(|&at| {
                    let at = at as usize;
                    fix((a[at] * fam.b) * f.at(at)).wrapping_sub(fam.base[at])
                })
                .collect(),
            None => Vec::new(),
        };
        debug_assert_eq!(delta.len(), cover.at.len());
        let mut total = Vec::new();
        if !cover.at.is_empty() {
            total = vec![0 as Fixed; cover.start.len() - 1];
            for (&i, &d) in cover.to.iter().zip(&delta) {
                let t = &mut total[i as usize];
                *t = t.wrapping_add(d);
            }
        }
        Layer {
            family,
            cover,
            delta,
            total,
        }
    }

    /// Whether no regime of the class covers any linked pair.
    pub fn is_plain(&self) -> bool {
        self.cover.at.is_empty()
    }

    /// Bring the differences to this step at the covered moved slots
    /// (`hits`, from [`Cover::moved`]), the family's base being at this
    /// step already. Returns the class's own changes where they differ
    /// from its family's, as (moved-pair index, own change), ascending by
    /// slot; None when no covered slot moved (the family's changes apply
    /// as they are).
    pub fn patch(
        &mut self,
        fam: &Family,
        g: &Gates,
        a: &[f64],
        hits: &[(u32, u32)],
    ) -> Option<Vec<(u32, Fixed)>> {
        let f = g.factor.as_ref()?;
        if hits.is_empty() {
            return None;
        }
        let own = hits
            .iter()
            .map(|&(pos, q)| {
                let at = self.cover.at[pos as usize] as usize;
                let new = fix((a[at] * fam.b) * f.at(at)).wrapping_sub(fam.base[at]);
                let delta = &mut self.delta[pos as usize];
                let d = new.wrapping_sub(*delta);
                *delta = new;
                let t = &mut self.total[self.cover.to[pos as usize] as usize];
                *t = t.wrapping_add(d);
                (q, d)
            })
            .collect();
        Some(own)
    }

    /// Add the differences of source j's covered slots to the exposures
    /// (the family's row is added separately).
    #[inline]
    pub fn add(&self, e: &mut [Fixed], j: usize) {
        self.add_or_sub::<false>(e, j);
    }

    #[inline(always)]
    fn add_or_sub<const SUB: bool>(&self, e: &mut [Fixed], j: usize) {
        let c = &*self.cover;
        let range = c.start[j] as usize..c.start[j + 1] as usize;
        for (&i, &d) in c.to[range.clone()].iter().zip(&self.delta[range]) {
            let x = &mut e[i as usize];
            *x = if SUB {
                x.wrapping_sub(d)
            } else {
                x.wrapping_add(d)
            };
        }
    }

    /// Add the differences of every covered slot whose source holds the
    /// innovation (`holders`, by country): source by source, or, where
    /// the sources that lack it have fewer covered slots (the classes
    /// of regimes whose controllers hold most of what they control), as
    /// the totals less the slots of those sources. Integer sums: the
    /// same exposures either way.
    pub fn add_held(&self, e: &mut [Fixed], holders: &FixedBitSet) {
        let c = &*self.cover;
        let n = c.start.len() - 1;
        // The covered slots of the holders, counted over the holders or
        // (where fewer lack it) over those that lack it: a walk over the
        // set bits rather than a test and a branch per country.
        let slots = |j: usize| (c.start[j + 1] - c.start[j]) as usize;
        let all = c.start[n] as usize;
        let held = if 2 * holders.count_ones(..) <= n {
            holders.ones().map(slots).sum()
        } else {
            all - holders.zeroes().map(slots).sum::<usize>()
        };
        let lacking = all - held;
        // The totals are added in vector lanes: about an eighth of a
        // covered slot's cost each.
        if lacking + n / 8 < held {
            for (x, &t) in e.iter_mut().zip(&self.total) {
                *x = x.wrapping_add(t);
            }
            for j in holders.zeroes() {
                self.add_or_sub::<true>(e, j);
            }
        } else {
            for j in holders.ones() {
                self.add_or_sub::<false>(e, j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::sim::rows::{Factor, NONE};

    /// Gates with these products per slot (NaN: not covered).
    fn gates(products: Vec<f64>) -> Gates {
        Gates {
            boost: 1.0,
            chill: 1.0,
            factor: Some(Factor::new(products)),
        }
    }

    /// The moved covered slots found word by word (a cover with more
    /// slots than the bitset has words) and slot by slot (fewer) are the
    /// covered slots in the moved set, ascending, with their moved-pair
    /// indices; from a twin too.
    #[test]
    fn a_cover_finds_its_moved_slots_either_way() {
        let n = 23;
        let w = Array2::from_shape_fn((n, n), |(j, i)| if j == i { 0.0 } else { 1.0 });
        let links = Links::new(&w);
        let slots = links.values();
        // Moved slots: about one in three, in a scrambled order of moved
        // pairs (q).
        let mut by_slot: Vec<(u32, u32)> = (0..slots)
            .filter(|at| at % 3 != 1)
            .map(|at| (at as u32, 0))
            .collect();
        let m = by_slot.len() as u32;
        for (p, e) in by_slot.iter_mut().enumerate() {
            e.1 = (p as u32 * 7) % m;
        }
        let mut moved_at = vec![NONE; slots];
        let mut moved_bits = vec![0u64; slots.div_ceil(64)];
        for (p, &(at, _)) in by_slot.iter().enumerate() {
            moved_at[at as usize] = p as u32;
            moved_bits[at as usize / 64] |= 1 << (at % 64);
        }
        let many = gates(
            (0..slots)
                .map(|at| if at % 5 < 3 { 0.5 } else { f64::NAN })
                .collect(),
        );
        let few = gates(
            (0..slots)
                .map(|at| if at % 97 == 4 { 0.5 } else { f64::NAN })
                .collect(),
        );
        let from_many = Cover::new(&many, &links);
        let changed: Vec<(usize, u32, u32)> = (0..slots)
            .filter(|at| at % 11 == 0)
            .map(|at| (at, (at / n) as u32, (at % n) as u32))
            .collect();
        let mut twin_g = (0..slots)
            .map(|at| if at % 5 < 3 { 0.5 } else { f64::NAN })
            .collect::<Vec<_>>();
        for &(at, _, _) in &changed {
            twin_g[at] = if twin_g[at].is_nan() { 0.25 } else { f64::NAN };
        }
        let twin = Cover::from_twin(&from_many, &many, &gates(twin_g), &changed, slots)
            .expect("other slots covered");
        let from_few = Cover::new(&few, &links);
        assert!(from_many.words.is_some() && twin.words.is_some());
        assert!(from_few.words.is_none() && !from_few.at.is_empty());
        for cover in [&from_many, &twin, &from_few] {
            let got = cover.moved(&moved_bits, &moved_at, &by_slot);
            let want: Vec<(u32, u32)> = cover
                .at
                .iter()
                .enumerate()
                .filter(|&(_, &at)| moved_at[at as usize] != NONE)
                .map(|(pos, &at)| (pos as u32, by_slot[moved_at[at as usize] as usize].1))
                .collect();
            assert!(!want.is_empty());
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_cover_changed_from_a_twin_is_the_cover_made_afresh() {
        let n = 23;
        // A dense network and a sparse one (about one pair in five).
        let dense = Array2::from_shape_fn((n, n), |(j, i)| if j == i { 0.0 } else { 1.0 });
        let sparse = Array2::from_shape_fn((n, n), |(j, i)| {
            if j != i && (j * 7 + i * 3) % 5 == 0 {
                1.0
            } else {
                0.0
            }
        });
        for w in [dense, sparse] {
            let links = Links::new(&w);
            let linked: Vec<(usize, u32, u32)> = (0..n * n)
                .filter(|&x| links.slot[x] != NONE)
                .map(|x| (links.slot[x] as usize, (x / n) as u32, (x % n) as u32))
                .collect();
            let mut parent = vec![f64::NAN; links.values()];
            for &(at, j, i) in &linked {
                if (j + 2 * i) % 3 == 0 {
                    parent[at] = 0.5;
                }
            }
            // The slots that may differ: some become covered (among them
            // the first and last sources' and a whole source's), some stop
            // being covered, some change product only, some stay as they
            // were.
            let mut slots: Vec<(usize, u32, u32)> = linked
                .iter()
                .copied()
                .filter(|&(_, j, i)| {
                    (j * 5 + i) % 4 == 0 || j == 0 || j == 9 || j as usize == n - 1
                })
                .collect();
            slots.sort_unstable();
            let mut child = parent.clone();
            for (q, &(at, _, _)) in slots.iter().enumerate() {
                child[at] = match q % 4 {
                    0 => 0.25,
                    1 => f64::NAN,
                    2 if !parent[at].is_nan() => 0.125,
                    _ => parent[at],
                };
            }
            let (pg, g) = (gates(parent.clone()), gates(child));
            let from = Cover::new(&pg, &links);
            let got = Cover::from_twin(&from, &pg, &g, &slots, links.values())
                .expect("other slots covered");
            let fresh = Cover::new(&g, &links);
            assert_eq!(got.at, fresh.at);
            assert_eq!(got.to, fresh.to);
            assert_eq!(got.start, fresh.start);
            assert!(got.words.is_some() && from.words.is_some());
            assert_eq!(got.words, fresh.words);
            // Products that change where coverage does not: the twin's.
            let mut same = parent.clone();
            for &(at, _, _) in &slots {
                if !same[at].is_nan() {
                    same[at] = 0.75;
                }
            }
            assert!(Cover::from_twin(&from, &pg, &gates(same), &slots, links.values()).is_none());
        }
    }
}
