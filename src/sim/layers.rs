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

use super::rows::{Fixed, Gates, Links, fix};

/// Classes sharing a boost and a chilling factor, and their term at every
/// slot where no regime covers the pair.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// The boost times 2^F, and the chilling factor (bits: the key).
    pub b: f64,
    pub chill: f64,
    /// Per slot of [`Links`], in fixed point.
    pub base: Vec<Fixed>,
}

impl Family {
    pub fn new(boost: f64, chill: f64, scale: f64, a: &[f64], chilled: &[bool]) -> Self {
        let b = boost * scale;
        let base = a
            .iter()
            .zip(chilled)
            .map(|(&a, &ch)| Self::plain(b, chill, a, ch))
            .collect();
        Family { b, chill, base }
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

    /// Bring the base to this step at the moved slots `by_slot` (slot,
    /// index among the moved pairs), given this step's weights and chilled
    /// flags there (`a_moved`, `chilled_moved`, in the same order); return
    /// the change at each moved pair by its index, followed by `pad` zeros.
    pub fn patch(
        &mut self,
        by_slot: &[(u32, u32)],
        a_moved: &[f64],
        chilled_moved: &[bool],
        pad: usize,
    ) -> Vec<Fixed> {
        let mut d = vec![0; by_slot.len() + pad];
        for ((&(at, q), &a), &ch) in by_slot.iter().zip(a_moved).zip(chilled_moved) {
            let new = Self::plain(self.b, self.chill, a, ch);
            let old = &mut self.base[at as usize];
            d[q as usize] = new.wrapping_sub(*old);
            *old = new;
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
        cover
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
        let mut hits = Vec::new();
        for (pos, &at) in self.at.iter().enumerate() {
            let at = at as usize;
            if moved_bits[at / 64] & (1 << (at % 64)) != 0 {
                hits.push((pos as u32, by_slot[moved_at[at] as usize].1));
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
        Layer {
            family,
            cover,
            delta,
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
                (q, d)
            })
            .collect();
        Some(own)
    }

    /// Add the differences of source j's covered slots to the exposures
    /// (the family's row is added separately).
    #[inline]
    pub fn add(&self, e: &mut [Fixed], j: usize) {
        let c = &*self.cover;
        let range = c.start[j] as usize..c.start[j + 1] as usize;
        for (&i, &d) in c.to[range.clone()].iter().zip(&self.delta[range]) {
            let x = &mut e[i as usize];
            *x = x.wrapping_add(d);
        }
    }
}
