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

/// A class's covered slots and, at each, its term minus its family's.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// Index of the class's [`Family`].
    pub family: usize,
    /// Covered slots by source: source j's are entries `start[j]..start[j
    /// + 1]` of `to` (the target) and `at` (the slot), ascending. Kept
    /// apart so that the per-step scan for moved slots reads `at` alone.
    start: Vec<u32>,
    to: Vec<u32>,
    at: Vec<u32>,
    /// The class's term minus the family's, per covered slot.
    delta: Vec<Fixed>,
}

impl Layer {
    /// From the class's gates (covered where the factor is not NaN), this
    /// step's weights `a` and its family, already at this step.
    pub fn new(family: usize, fam: &Family, g: &Gates, links: &Links, a: &[f64]) -> Self {
        let n = links.n;
        let mut layer = Layer {
            family,
            start: Vec::with_capacity(n + 1),
            to: Vec::new(),
            at: Vec::new(),
            delta: Vec::new(),
        };
        layer.start.push(0);
        for j in 0..n {
            if let Some(f) = &g.factor {
                let (slots, targets) = links.of(j);
                let row = if links.dense {
                    j * n..(j + 1) * n
                } else {
                    slots.clone()
                };
                f.for_covered(row, |at, x| {
                    let i = if links.dense {
                        at - j * n
                    } else {
                        targets[at - slots.start] as usize
                    };
                    layer.to.push(i as u32);
                    layer.at.push(at as u32);
                    layer
                        .delta
                        .push(fix((a[at] * fam.b) * x).wrapping_sub(fam.base[at]));
                });
            }
            layer.start.push(layer.at.len() as u32);
        }
        layer
    }

    /// Whether no regime of the class covers any linked pair.
    pub fn is_plain(&self) -> bool {
        self.at.is_empty()
    }

    /// Bring the differences to this step at the covered moved slots
    /// (`moved_bits`: a bitset of the moved slots; `moved_at[slot]`: the
    /// slot's position in `by_slot`), the family's base being at this
    /// step already. Returns the class's own changes where they differ
    /// from its family's (`family_d`), as (moved-pair index, own change),
    /// ascending by slot; None when no covered slot moved (the family's
    /// changes apply as they are).
    pub fn patch(
        &mut self,
        fam: &Family,
        g: &Gates,
        a: &[f64],
        moved: (&[u64], &[u32]),
        by_slot: &[(u32, u32)],
    ) -> Option<Vec<(u32, Fixed)>> {
        let (moved_bits, moved_at) = moved;
        let f = g.factor.as_ref()?;
        let mut own: Option<Vec<(u32, Fixed)>> = None;
        for (&at, delta) in self.at.iter().zip(&mut self.delta) {
            let at = at as usize;
            if moved_bits[at / 64] & (1 << (at % 64)) == 0 {
                continue;
            }
            let new = fix((a[at] * fam.b) * f.at(at)).wrapping_sub(fam.base[at]);
            let q = by_slot[moved_at[at] as usize].1;
            own.get_or_insert_with(Vec::new)
                .push((q, new.wrapping_sub(*delta)));
            *delta = new;
        }
        own
    }

    /// Add the differences of source j's covered slots to the exposures
    /// (the family's row is added separately).
    #[inline]
    pub fn add(&self, e: &mut [Fixed], j: usize) {
        let range = self.start[j] as usize..self.start[j + 1] as usize;
        for (&i, &d) in self.to[range.clone()].iter().zip(&self.delta[range]) {
            let x = &mut e[i as usize];
            *x = x.wrapping_add(d);
        }
    }
}
