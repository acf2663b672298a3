//! Gate classes at a step and their terms (see ARCHITECTURE.md and
//! `layers`): which class every live innovation is in, and the classes'
//! and families' fixed-point terms brought up to this step at the pairs
//! whose weights moved, or made afresh for classes new in use.

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::diffuse::{ClassChanges, MATRIX_ROWS, Moved, PAD};
use super::layers::{Cover, Family, Layer};
use super::policy::KeyDesc;
use super::rows::{Fixed, Gates, Links, NONE};

/// What [`super::Simulation::classes_now`] finds at a step.
pub(super) struct Classes {
    /// Whether the view restricts the same pairs as last step's (then the
    /// chilled pairs are the same too).
    pub(super) same_pairs: bool,
    /// The gate class of every live innovation (NONE for those everyone
    /// holds).
    pub(super) key_cur: Vec<u32>,
    /// Which rows need recomputing (new, or of a class new to them).
    pub(super) recompute_flag: Vec<bool>,
    /// Live innovations per class.
    pub(super) rows_in: Vec<usize>,
    /// Per class whose gates were made this step from a near twin's, the
    /// twin and the slots where they may differ.
    pub(super) twins: Vec<Option<Twin>>,
}

/// A class's near twin: the class last step of the first innovation that
/// moved into it, whose gates differ from the class's at most at `slots`
/// (slot, source, target; ascending by slot, no repeats; see
/// [`super::Simulation::gate_diff`]).
#[derive(Debug, Clone)]
pub(super) struct Twin {
    pub(super) parent: u32,
    pub(super) slots: Vec<(usize, u32, u32)>,
}

/// The state [`ClassTerms::bring`] brings to a step: borrowed from the
/// [`super::Simulation`] field by field, so that the births of the step (which
/// read none of it) are drawn alongside.
pub(super) struct ClassTerms<'s> {
    pub(super) families: &'s mut Vec<Family>,
    pub(super) layers: &'s mut Vec<Option<Layer>>,
    pub(super) covers: &'s mut FxHashMap<CoverKey, (Arc<Cover>, u32)>,
    pub(super) gates: &'s [Option<Arc<Gates>>],
    pub(super) descs: &'s [KeyDesc],
    pub(super) links: &'s Links,
    pub(super) scale: f64,
    /// The step the terms are brought to.
    pub(super) t: u32,
    /// Check kept covers against fresh ones (tests).
    pub(super) verify: bool,
}

impl ClassTerms<'_> {
    /// Bring the class terms to this step (see [`super::layers`]): every family's
    /// base patched at the moved pairs, each class in use kept from last
    /// step patched at its covered moved pairs, a class new in use laid
    /// over its family (made if new; its cover, if new, changed from its
    /// near twin's where `twins` has one); classes no longer in use
    /// dropped.
    /// Returns, by family, the change of its base at every moved pair, and
    /// by class, its own changes where a covered moved pair makes them
    /// differ from its family's; in the order of `moved.sources`, followed
    /// by [`PAD`] zeros (none at all when nothing moved).
    pub(super) fn bring(
        self,
        rows_in: &[usize],
        twins: &[Option<Twin>],
        a: &[f64],
        chilled: &[bool],
        moved: &Moved,
    ) -> (Vec<Vec<Fixed>>, Vec<Option<ClassChanges>>) {
        let classes = self.gates.len();
        self.layers.resize_with(classes, || None);
        let used: Vec<bool> = rows_in.iter().map(|&r| r > 0).collect();
        for (l, &u) in self.layers.iter_mut().zip(&used) {
            if !u {
                *l = None;
            }
        }
        let scale = self.scale;
        let (mut family_d, class_d) = patch_terms(
            &mut *self.families,
            &mut *self.layers,
            self.gates,
            (a, chilled),
            moved,
        );
        let gates = self.gates;
        let gates_of =
            |c: usize| -> &Gates { gates[c].as_deref().expect("gates built for classes in use") };
        let fresh: Vec<usize> = (0..classes)
            .filter(|&c| used[c] && self.layers[c].is_none())
            .collect();
        for &c in &fresh {
            let g = gates_of(c);
            if !self.families.iter().any(|f| f.holds(g, scale)) {
                self.families
                    .push(Family::new(g.boost, g.chill, scale, a, chilled, self.links));
                family_d.push(Vec::new());
            }
        }
        // Covers by covering regimes: those of earlier steps, else made
        // once for all the new classes that share them.
        let t = self.t;
        let cover_key = |c: usize| {
            let d = &self.descs[c];
            (d.cover.clone(), d.ext.clone())
        };
        let mut to_make: Vec<(CoverKey, usize)> = Vec::new();
        for &c in &fresh {
            let key = cover_key(c);
            if !self.covers.contains_key(&key) && !to_make.iter().any(|(k, _)| *k == key) {
                to_make.push((key, c));
            }
        }
        // A class made from a near twin whose cover is kept (in use last
        // step): that cover, itself where they cover the same slots, else
        // changed at the slots where their gates may differ.
        let links = self.links;
        let covers = &*self.covers;
        let made: Vec<(CoverKey, Arc<Cover>, bool)> = to_make
            .into_par_iter()
            .map(|(key, c)| {
                let g = gates_of(c);
                let twin = twins.get(c).and_then(Option::as_ref).and_then(|twin| {
                    let p = twin.parent as usize;
                    let (parent, _) = covers.get(&cover_key(p))?;
                    Some((parent, gates[p].as_deref()?, twin))
                });
                let Some((parent, parent_g, twin)) = twin else {
                    return (key, Arc::new(Cover::new(g, links)), true);
                };
                match Cover::from_twin(parent, parent_g, g, &twin.slots, links.values()) {
                    Some(cover) => (key, Arc::new(cover), true),
                    None => (key, Arc::clone(parent), false),
                }
            })
            .collect();
        // Different covering regimes may still cover the same pairs.
        for (key, cover, new) in made {
            let same = new
                .then(|| {
                    self.covers
                        .values()
                        .find(|(c, _)| **c == *cover)
                        .map(|(c, _)| Arc::clone(c))
                })
                .flatten();
            self.covers.insert(key, (same.unwrap_or(cover), t));
        }
        let fresh: Vec<(usize, Arc<Cover>)> = fresh
            .into_iter()
            .map(|c| (c, Arc::clone(&self.covers[&cover_key(c)].0)))
            .collect();
        if self.verify {
            for (c, cover) in &fresh {
                assert!(**cover == Cover::new(gates_of(*c), links), "cover kept");
            }
        }
        let families = &*self.families;
        let mut layers = std::mem::take(&mut *self.layers);
        let built: Vec<(usize, Layer)> = fresh
            .into_par_iter()
            .map(|(c, cover)| {
                let g = gates_of(c);
                let f = families
                    .iter()
                    .position(|f| f.holds(g, scale))
                    .expect("family made above");
                (c, Layer::new(f, &families[f], g, a, cover))
            })
            .collect();
        for (c, l) in built {
            layers[c] = Some(l);
        }
        *self.layers = layers;
        // Covers in use are marked this step; those out of use for more
        // than COVER_KEPT steps are dropped.
        for (cover, last) in self.covers.values_mut() {
            if Arc::strong_count(cover) > 1 {
                *last = t;
            }
        }
        self.covers.retain(|_, (_, last)| t - *last <= COVER_KEPT);
        (family_d, class_d)
    }
}

/// A class's covering regimes and, among them, the extraterritorial ones
/// that apply through its origin: they alone decide its covered pairs.
pub(super) type CoverKey = (Vec<u32>, Vec<u32>);

/// Steps a cover no class uses is kept (see [`Cover`]). 0, 4 and 32
/// measured alike in time on medium_policy.toml; 32 raised its peak
/// memory (124-126 -> 140-204 MiB), 4 hardly (120-164 MiB, mostly 122).
const COVER_KEPT: u32 = 4;

/// Live innovations per gate class.
pub(super) fn class_rows(keys: &[u32], classes: usize) -> Vec<usize> {
    let mut rows = vec![0usize; classes];
    for &k in keys {
        if k != NONE {
            rows[k as usize] += 1;
        }
    }
    rows
}

/// Lay out the whole changes (family's plus own) of the classes where
/// that pays: those with at least [`MATRIX_ROWS`] live innovations (their
/// compact matrices are made from them), and those whose rows would
/// together read more own changes than the family's has entries (1, 4
/// and 16 times that measured: 1 best, on a par with never).
/// Elsewhere each row adds the class's few own changes to its family's
/// (most classes of a world with retaliation hold a handful of
/// innovations).
pub(super) fn whole_changes(
    class_d: &mut [Option<ClassChanges>],
    layers: &[Option<Layer>],
    family_d: &[Vec<Fixed>],
    rows: &[usize],
) {
    class_d
        .par_iter_mut()
        .zip(layers)
        .zip(rows)
        .for_each(|((d, l), &r)| {
            let (Some(d), Some(l)) = (d.as_mut(), l.as_ref()) else {
                return;
            };
            let fam = &family_d[l.family];
            if r >= MATRIX_ROWS || r * d.own.len() >= fam.len() {
                let mut whole = fam.clone();
                for &(q, x) in &d.own {
                    let y = &mut whole[q as usize];
                    *y = y.wrapping_add(x);
                }
                d.whole = Some(whole);
            }
        });
}

/// Bring class terms kept from the step before to this step at the moved
/// pairs (see [`super::layers`]): every family's base, then each class's covered
/// moved slots, given this step's weights and chilled flags (`now`).
/// Returns, by family, the change of its base at every moved pair, and by
/// class, its own changes where a covered moved pair makes them differ
/// from its family's; in the order of `moved.sources`, followed by [`PAD`]
/// zeros (none at all when nothing moved).
pub(super) fn patch_terms(
    families: &mut [Family],
    layers: &mut [Option<Layer>],
    gates: &[Option<Arc<Gates>>],
    now: (&[f64], &[bool]),
    moved: &Moved,
) -> (Vec<Vec<Fixed>>, Vec<Option<ClassChanges>>) {
    let (a, chilled) = now;
    let by_slot = &moved.by_slot;
    let mut class_d: Vec<Option<ClassChanges>> = vec![None; layers.len()];
    if by_slot.is_empty() {
        return (vec![Vec::new(); families.len()], class_d);
    }
    let a_moved: Vec<f64> = by_slot.iter().map(|&(at, _)| a[at as usize]).collect();
    let chilled_moved: Vec<bool> = by_slot
        .iter()
        .map(|&(at, _)| chilled[at as usize])
        .collect();
    let family_d: Vec<Vec<Fixed>> = families
        .par_iter_mut()
        .map(|f| f.patch((by_slot, &moved.to_of), &a_moved, &chilled_moved, PAD))
        .collect();
    let mut moved_at = vec![NONE; a.len()];
    let mut moved_bits = vec![0u64; a.len().div_ceil(64)];
    for (p, &(at, _)) in by_slot.iter().enumerate() {
        moved_at[at as usize] = p as u32;
        moved_bits[at as usize / 64] |= 1 << (at % 64);
    }
    // The moved slots of each distinct cover, once for all its classes.
    let mut covers: Vec<&Arc<Cover>> = Vec::new();
    let cover_of: Vec<usize> = layers
        .iter()
        .map(|l| match l.as_ref().filter(|l| !l.is_plain()) {
            Some(l) => match covers.iter().position(|c| Arc::ptr_eq(c, &l.cover)) {
                Some(x) => x,
                None => {
                    covers.push(&l.cover);
                    covers.len() - 1
                }
            },
            None => usize::MAX,
        })
        .collect();
    let hits: Vec<Vec<(u32, u32)>> = covers
        .par_iter()
        .map(|c| c.moved(&moved_bits, &moved_at, by_slot))
        .collect();
    let families = &*families;
    layers
        .par_iter_mut()
        .zip(class_d.par_iter_mut())
        .zip(cover_of)
        .enumerate()
        .for_each(|(c, ((l, d_out), x))| {
            let Some(l) = l.as_mut().filter(|_| x != usize::MAX) else {
                return;
            };
            let g = gates[c].as_deref().expect("gates built for classes in use");
            let fam = &families[l.family];
            *d_out = l
                .patch(fam, g, a, &hits[x])
                .map(|own| ClassChanges { own, whole: None });
        });
    (family_d, class_d)
}
