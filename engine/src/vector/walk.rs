//! Our own walk of the HNSW graph hnsw_rs builds.
//!
//! hnsw_rs builds, updates and persists the graph; searches walk a flat,
//! read-only copy of its links ([`Links`], slot ids in contiguous arrays)
//! over the slot table's vectors. hnsw_rs's own search allocates an `Arc`
//! and a hash-map entry per visited point, takes a lock per expanded node,
//! makes only one greedy hop per upper layer, and — given any filter, even
//! one that allows everything — never stops early, so it expands every
//! candidate it ever queued. The walk here is the textbook one (greedy
//! descent to convergence, then a beam of `ef` on layer 0 that stops when
//! its best candidate is worse than its worst kept result) with a
//! generation-stamped visited array and prefetching, and it applies the
//! permission filter the way hnswlib does: filtered-out points are walked
//! through but never kept, so the filter stays inside the search.
//!
//! Slots inserted after the copy was made are not in it: searches scan them
//! exactly (like the orphans) until the next copy.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use hnsw_rs::prelude::{DistDot, Hnsw};

use super::exact::OrdF32;
use crate::embed::dot;

/// The graph's links by slot, copied out of hnsw_rs.
#[derive(Debug, Default)]
pub(crate) struct Links {
    /// Slots below this were in the graph when it was copied.
    pub(super) covered: usize,
    /// Where the walk starts (a slot on the top layer), if any point exists.
    entry: Option<u32>,
    /// Layer-0 neighbours of slot `s`: `level0[offsets[s]..offsets[s + 1]]`.
    offsets: Vec<u32>,
    level0: Vec<u32>,
    /// Neighbours on layer `l ≥ 1` at `upper[l - 1]` (few points each).
    upper: Vec<HashMap<u32, Box<[u32]>>>,
    /// Layer-0 links we added to make unreachable slots reachable
    /// (`from → to`); kept so a new copy of hnsw_rs's links gets them too.
    pub(super) added: Vec<(u32, u32)>,
}

impl Links {
    /// Copies the links of every point of `hnsw` whose slot is below
    /// `covered` (all points, when nothing is being inserted meanwhile).
    pub(super) fn copy(hnsw: &Hnsw<'static, f32, DistDot>, covered: usize) -> Links {
        let top = hnsw.get_max_level_observed() as usize;
        let mut per_slot: Vec<Vec<u32>> = vec![Vec::new(); covered];
        let mut upper: Vec<HashMap<u32, Box<[u32]>>> = vec![HashMap::new(); top];
        let mut entry = None;
        let keep = |ns: &[hnsw_rs::prelude::Neighbour]| -> Vec<u32> {
            ns.iter()
                .filter(|n| n.d_id < covered)
                .map(|n| n.d_id as u32)
                .collect()
        };
        for p in hnsw.get_point_indexation() {
            let slot = p.get_origin_id();
            if slot >= covered {
                continue;
            }
            let layer = p.get_point_id().0 as usize;
            let hood = p.get_neighborhood_id();
            if let Some(l0) = hood.first() {
                per_slot[slot] = keep(l0);
            }
            for l in 1..=layer.min(top) {
                if let Some(ns) = hood.get(l) {
                    upper[l - 1].insert(slot as u32, keep(ns).into_boxed_slice());
                }
            }
            if layer == top && entry.is_none() {
                entry = Some(slot as u32);
            }
        }
        let mut offsets = Vec::with_capacity(covered + 1);
        let mut level0 = Vec::with_capacity(per_slot.iter().map(Vec::len).sum());
        offsets.push(0u32);
        for ns in per_slot {
            level0.extend(ns);
            offsets.push(level0.len() as u32);
        }
        Links {
            covered,
            entry,
            offsets,
            level0,
            upper,
            added: Vec::new(),
        }
    }

    /// Adds layer-0 links `from → to` (both below `covered`; others are
    /// ignored), rebuilding the arrays once.
    pub(super) fn add_links(&mut self, links: &[(u32, u32)]) {
        let links: Vec<(u32, u32)> = links
            .iter()
            .copied()
            .filter(|&(f, t)| (f as usize) < self.covered && (t as usize) < self.covered && f != t)
            .collect();
        if links.is_empty() {
            return;
        }
        let mut extra: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(f, t) in &links {
            extra.entry(f).or_default().push(t);
        }
        let mut offsets = Vec::with_capacity(self.offsets.len());
        let mut level0 = Vec::with_capacity(self.level0.len() + links.len());
        offsets.push(0u32);
        for s in 0..self.covered as u32 {
            let start = level0.len();
            level0.extend_from_slice(self.level0(s));
            if let Some(more) = extra.get(&s) {
                for &t in more {
                    if !level0[start..].contains(&t) {
                        level0.push(t);
                    }
                }
            }
            offsets.push(level0.len() as u32);
        }
        self.offsets = offsets;
        self.level0 = level0;
        self.added.extend(links);
    }

    /// The slots some slot linked to on layer 0 here but no longer does in
    /// `newer`, a later copy: hnsw_rs prunes neighbour lists as points
    /// arrive, so these are the older slots a new copy can cut off.
    pub(super) fn lost_in_links(&self, newer: &Links) -> Vec<u32> {
        let mut lost: Vec<u32> = (0..self.covered.min(newer.covered) as u32)
            .flat_map(|s| {
                let now = newer.level0(s);
                self.level0(s)
                    .iter()
                    .copied()
                    .filter(move |t| !now.contains(t))
            })
            .collect();
        lost.sort_unstable();
        lost.dedup();
        lost
    }

    fn level0(&self, slot: u32) -> &[u32] {
        let s = slot as usize;
        &self.level0[self.offsets[s] as usize..self.offsets[s + 1] as usize]
    }

    /// The best `n` slots by similarity to `query` among those `keep`
    /// accepts, best first, from a walk with a beam of `ef ≥ n`.
    pub(super) fn walk(
        &self,
        vectors: &[f32],
        dim: usize,
        query: &[f32],
        n: usize,
        ef: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<(f32, u32)> {
        let Some(mut cur) = self.entry else {
            return Vec::new();
        };
        let vec_of = |s: u32| &vectors[s as usize * dim..(s as usize + 1) * dim];
        let mut best = dot(query, vec_of(cur));
        // Greedy descent, to convergence on every upper layer.
        for layer in self.upper.iter().rev() {
            loop {
                let mut moved = false;
                for &nb in layer.get(&cur).map(|b| &b[..]).unwrap_or(&[]) {
                    let sim = dot(query, vec_of(nb));
                    if sim > best {
                        best = sim;
                        cur = nb;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        let ef = ef.max(n).max(1);
        VISITED.with(|v| {
            let mut visited = v.borrow_mut();
            visited.reset(self.covered);
            visited.mark(cur);
            // Candidates: best first. Results: worst on top, at most ef.
            let mut cand: BinaryHeap<(OrdF32, u32)> = BinaryHeap::with_capacity(ef * 4);
            let mut res: BinaryHeap<Reverse<(OrdF32, u32)>> = BinaryHeap::with_capacity(ef + 1);
            cand.push((OrdF32(best), cur));
            if keep(cur) {
                res.push(Reverse((OrdF32(best), cur)));
            }
            while let Some((OrdF32(sim), c)) = cand.pop() {
                if res.len() >= ef && res.peek().is_some_and(|w| sim < w.0 .0 .0) {
                    break;
                }
                let hood = self.level0(c);
                prefetch(vectors, dim, hood);
                for &nb in hood {
                    if !visited.mark(nb) {
                        continue;
                    }
                    let s = dot(query, vec_of(nb));
                    let worst = res.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0 .0);
                    if res.len() < ef || s > worst {
                        cand.push((OrdF32(s), nb));
                        if keep(nb) {
                            res.push(Reverse((OrdF32(s), nb)));
                            if res.len() > ef {
                                res.pop();
                            }
                        }
                    }
                }
            }
            let mut out: Vec<(f32, u32)> = res.into_iter().map(|r| (r.0 .0 .0, r.0 .1)).collect();
            out.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            out.truncate(n);
            out
        })
    }
}

/// Asks the CPU to start loading the neighbours' vectors before they are
/// compared (the walk is bound by memory latency, not arithmetic).
#[inline]
fn prefetch(vectors: &[f32], dim: usize, slots: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    for &s in slots {
        let i = s as usize * dim;
        if i < vectors.len() {
            // SAFETY: prefetching is a hint; the address is inside `vectors`.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(vectors.as_ptr().add(i) as *const i8);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (vectors, dim, slots);
}

/// Which slots this walk has seen: a stamp per slot, so starting a walk
/// costs one increment rather than clearing the array.
#[derive(Default)]
struct Visited {
    stamp: Vec<u32>,
    now: u32,
}

impl Visited {
    fn reset(&mut self, slots: usize) {
        if self.stamp.len() < slots {
            self.stamp.resize(slots, 0);
        }
        self.now = self.now.wrapping_add(1);
        if self.now == 0 {
            self.stamp.fill(0);
            self.now = 1;
        }
    }

    /// Marks `slot`; false when it was already marked in this walk.
    #[inline]
    fn mark(&mut self, slot: u32) -> bool {
        let s = &mut self.stamp[slot as usize];
        if *s == self.now {
            false
        } else {
            *s = self.now;
            true
        }
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::tests::rand_vec as unit;

    #[test]
    fn added_links_make_a_cut_off_slot_reachable_and_survive_a_new_copy() {
        let dim = 8;
        let n = 300usize;
        let vectors: Vec<f32> = (0..n as u64).flat_map(|i| unit(i, dim)).collect();
        let hnsw = super::super::new_graph(n);
        for s in 0..n {
            hnsw.insert_slice((&vectors[s * dim..(s + 1) * dim], s));
        }
        let mut links = Links::copy(&hnsw, n);
        let all = |_: u32| true;
        let target = 123u32;
        let q = &vectors[target as usize * dim..(target as usize + 1) * dim];
        assert_eq!(links.walk(&vectors, dim, q, 1, 64, &all)[0].1, target);
        // Cut every link into the target (as hnsw_rs's pruning can).
        let mut cut = Links {
            covered: links.covered,
            entry: links.entry.filter(|&e| e != target).or(Some(0)),
            offsets: vec![0],
            level0: Vec::new(),
            upper: links
                .upper
                .iter()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| **k != target)
                        .map(|(k, v)| (*k, v.iter().copied().filter(|&t| t != target).collect()))
                        .collect()
                })
                .collect(),
            added: Vec::new(),
        };
        for s in 0..n as u32 {
            cut.level0
                .extend(links.level0(s).iter().filter(|&&t| t != target));
            cut.offsets.push(cut.level0.len() as u32);
        }
        assert!(cut
            .walk(&vectors, dim, q, 10, 64, &all)
            .iter()
            .all(|&(_, s)| s != target));
        // Comparing the copies names exactly the slot that lost its links.
        assert_eq!(links.lost_in_links(&cut), vec![target]);
        assert!(cut.lost_in_links(&links).is_empty());
        // Links from its nearest reachable slots bring it back.
        let near: Vec<(u32, u32)> = cut
            .walk(&vectors, dim, q, 4, 64, &|s| s != target)
            .into_iter()
            .map(|(_, s)| (s, target))
            .collect();
        cut.add_links(&near);
        assert_eq!(cut.walk(&vectors, dim, q, 1, 64, &all)[0].1, target);
        assert_eq!(cut.added.len(), 4);
        // Re-applied to a fresh copy, the same links are there.
        links.add_links(&cut.added);
        assert!(near.iter().all(|&(f, t)| links.level0(f).contains(&t)));
        // Links out of range are ignored.
        links.add_links(&[(0, n as u32 + 5)]);
        assert_eq!(links.added.len(), 4);
    }
}
