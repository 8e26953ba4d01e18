//! Reachability: every live vector must be found by a walk from its own
//! vector. After a build, a load or a new copy of the links, the vectors
//! not found get links to them from their nearest reachable ones; what is
//! still not found goes on the orphan list, which every search scans
//! exactly. Self-recall is therefore 100 % by construction; it is also
//! measured ([`VectorIndex::self_recall`]).

use rayon::prelude::*;

use super::walk::Links;
use super::{Inner, Table, VectorIndex, DEFAULT_EF};

/// Neighbours asked of the graph when checking that a vector finds itself.
const SELF_RECALL_K: usize = 10;
/// Links added to an unreachable slot, from its nearest reachable ones.
const REPAIR_LINKS: usize = 8;

impl VectorIndex {
    /// Share of live vectors that find themselves among their nearest
    /// graph neighbours or on the orphan list (1.0 after every build and
    /// insert, by construction; measured for the benchmark and tests).
    pub fn self_recall(&self) -> f64 {
        let inner = self.inner.load();
        let t = inner.table.read().expect("vector table lock");
        let orphans: std::collections::HashSet<u32> = t.orphans.iter().copied().collect();
        let live: Vec<u32> = (0..t.article.len() as u32)
            .filter(|&s| t.alive[s as usize])
            .collect();
        if live.is_empty() {
            return 1.0;
        }
        let found = live
            .par_iter()
            .filter(|&&s| {
                orphans.contains(&s)
                    || s as usize >= t.links.covered
                    || finds_itself(&t, inner.dim, s)
            })
            .count();
        found as f64 / live.len() as f64
    }
}

/// Whether a walk from `slot`'s own vector finds it.
fn finds_itself(t: &Table, dim: usize, slot: u32) -> bool {
    t.links
        .walk(
            &t.vectors,
            dim,
            t.vector(dim, slot),
            SELF_RECALL_K,
            DEFAULT_EF,
            &|s| t.alive[s as usize],
        )
        .iter()
        .any(|&(_, s)| s == slot)
}

impl Inner {
    /// Makes every live slot from `from` on that a walk does not find from
    /// its own vector reachable: links to it are added from its nearest
    /// reachable slots; what still cannot be found goes on the orphan list
    /// (scanned exactly). Returns how many went on the list.
    ///
    /// With `from > 0` (a new copy after inserts) the slots checked are the
    /// new ones and the `lost` ones, older slots that lost a link to them in
    /// the new copy; the other older slots are not rechecked (a full check
    /// of 100k vectors takes ~7 s; compaction rebuilds and checks
    /// everything).
    pub(super) fn repair(&self, from: usize, lost: &[u32]) -> usize {
        let t = self.table.read().expect("vector table lock");
        let unreachable = |t: &Table, slots: Vec<u32>| -> Vec<u32> {
            slots
                .into_par_iter()
                .filter(|&s| t.alive[s as usize] && !finds_itself(t, self.dim, s))
                .collect()
        };
        let checked = |t: &Table| -> Vec<u32> {
            let orphans: std::collections::HashSet<u32> = if from == 0 {
                Default::default()
            } else {
                t.orphans.iter().copied().collect()
            };
            lost.iter()
                .copied()
                .filter(|&s| (s as usize) < from && !orphans.contains(&s))
                .chain(from as u32..t.links.covered as u32)
                .collect()
        };
        let missing = unreachable(&t, checked(&t));
        if missing.is_empty() {
            drop(t);
            if from == 0 {
                self.table
                    .write()
                    .expect("vector table lock")
                    .orphans
                    .clear();
            }
            return 0;
        }
        // Links from each missing slot's nearest reachable ones to it.
        let links: Vec<(u32, u32)> = missing
            .par_iter()
            .flat_map_iter(|&m| {
                t.links
                    .walk(
                        &t.vectors,
                        self.dim,
                        t.vector(self.dim, m),
                        REPAIR_LINKS,
                        DEFAULT_EF,
                        &|s| s != m && t.alive[s as usize],
                    )
                    .into_iter()
                    .map(move |(_, s)| (s, m))
            })
            .collect();
        drop(t);
        let mut t = self.table.write().expect("vector table lock");
        t.links.add_links(&links);
        // New links change which paths a walk takes, so a slot found before
        // may not be now: check the same slots again, and put whatever is
        // still not found on the orphan list.
        let still = unreachable(&t, checked(&t));
        tracing::info!(
            unreachable = missing.len(),
            orphans = still.len(),
            "vector graph repair: links added, the rest put on the exact-scan list"
        );
        let n = still.len();
        if from == 0 {
            t.orphans = still;
        } else {
            t.orphans.extend(still);
        }
        n
    }

    /// Copies the graph's links again (covering every slot inserted since
    /// the last copy) and repairs the new slots and the older ones that lost
    /// a link to them in the new copy, when a walk cannot find them. The
    /// caller holds the writer lock, so no insert is half done.
    pub(super) fn recopy(&self) {
        let slots = self.table.read().expect("vector table lock").article.len();
        let mut links = Links::copy(&self.hnsw, slots);
        let (from, lost) = {
            let mut t = self.table.write().expect("vector table lock");
            links.add_links(&t.links.added);
            let lost = t.links.lost_in_links(&links);
            (std::mem::replace(&mut t.links, links).covered, lost)
        };
        self.repair(from, &lost);
    }
}
