//! Unit tests of the vector index: plans agree, filters hold, updates and
//! removals show.

use super::*;
use crate::embed::normalize;

pub(super) fn rand_vec(seed: u64, dim: usize) -> Vec<f32> {
    // xorshift: deterministic without a dependency.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    normalize(&mut v);
    v
}

#[test]
fn exact_and_graph_agree_and_respect_the_filter() {
    let dim = 16;
    let arts: Vec<_> = (1..=3000i64)
        .map(|id| {
            (
                id,
                format!("h{id}"),
                vec![
                    rand_vec(id as u64, dim),
                    rand_vec(id as u64 + 7_000_000, dim),
                ],
            )
        })
        .collect();
    let idx = VectorIndex::build(dim, arts);
    assert_eq!(idx.self_recall(), 1.0);
    let q = rand_vec(42, dim);
    let all = Allowed::from_ids((1..=3000).collect());
    let params = SearchParams {
        ef: 200,
        exact_below: 0,
        exact_fraction: 0.0,
    };
    let (g, plan) = idx.search(&q, &all, 10, params);
    assert_eq!(plan, Plan::Graph);
    let e = idx.search_exact(&q, &all, 10);
    let overlap = g.iter().filter(|a| e.iter().any(|b| b.id == a.id)).count();
    assert!(overlap >= 9, "graph recall {overlap}/10");
    // Only even articles allowed: every hit is even, and k of them.
    let even = Allowed::from_ids((1..=3000).filter(|i| i % 2 == 0).collect());
    let (h, _) = idx.search(&q, &even, 10, params);
    assert_eq!(h.len(), 10);
    assert!(h.iter().all(|a| a.id % 2 == 0));
    // A tiny allowed set is scanned exactly and still gives k hits.
    let few = Allowed::from_ids(vec![5, 17, 2999]);
    let (h, plan) = idx.search(&q, &few, 10, SearchParams::default());
    assert_eq!(plan, Plan::Exact);
    assert_eq!(h.len(), 3);
}

#[test]
fn broad_exact_scan_equals_brute_force() {
    let dim = 12;
    // Many passages per article, so the best slots crowd few articles
    // and the scan must widen to find k distinct ones.
    let arts: Vec<_> = (1..=500i64)
        .map(|id| {
            let v: Vec<Vec<f32>> = (0..6).map(|p| rand_vec(id as u64 * 10 + p, dim)).collect();
            (id, format!("h{id}"), v)
        })
        .collect();
    let brute = |q: &[f32], allowed: &dyn Fn(i64) -> bool, k: usize| {
        let mut best: Vec<(i64, f32)> = arts
            .iter()
            .filter(|a| allowed(a.0))
            .map(|a| (a.0, a.2.iter().map(|v| dot(q, v)).fold(f32::MIN, f32::max)))
            .collect();
        best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        best.truncate(k);
        best.into_iter().map(|x| x.0).collect::<Vec<_>>()
    };
    let idx = VectorIndex::build(dim, arts.clone());
    for seed in 0..5 {
        let q = rand_vec(9_000 + seed, dim);
        let all = Allowed::from_ids((1..=500).collect());
        let got: Vec<i64> = idx
            .search_exact(&q, &all, 25)
            .iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(got, brute(&q, &|_| true, 25));
        let odd = Allowed::from_ids((1..=500).filter(|i| i % 2 == 1).collect());
        let got: Vec<i64> = idx
            .search_exact(&q, &odd, 25)
            .iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(got, brute(&q, &|i| i % 2 == 1, 25));
    }
}

#[test]
fn upsert_replaces_and_remove_hides() {
    let dim = 8;
    let idx = VectorIndex::new(dim);
    let v1 = rand_vec(1, dim);
    let v2 = rand_vec(2, dim);
    idx.upsert(7, "a".into(), std::slice::from_ref(&v1));
    idx.upsert(8, "b".into(), std::slice::from_ref(&v2));
    let all = Allowed::from_ids(vec![7, 8]);
    let (h, _) = idx.search(&v1, &all, 1, SearchParams::default());
    assert_eq!(h[0].id, 7);
    // Article 7 now carries v2's direction: both match v2 equally well.
    idx.upsert(7, "c".into(), std::slice::from_ref(&v2));
    assert_eq!(idx.hash_of(7).as_deref(), Some("c"));
    let s = idx.stats();
    assert_eq!((s.articles, s.vectors, s.tombstones), (2, 2, 1));
    idx.remove(8);
    let (h, _) = idx.search(&v2, &all, 5, SearchParams::default());
    assert_eq!(h.iter().map(|a| a.id).collect::<Vec<_>>(), vec![7]);
    idx.compact();
    let s = idx.stats();
    assert_eq!((s.articles, s.vectors, s.tombstones), (1, 1, 0));
    assert_eq!(idx.self_recall(), 1.0);
}

#[test]
fn allowed_set() {
    let a = Allowed::from_ids(vec![3, 1, 3, 200, -4]);
    assert_eq!(a.ids(), &[1, 3, 200]);
    assert!(a.contains(200) && a.contains(1) && !a.contains(2) && !a.contains(-4));
    assert!(!a.contains(100_000));
}

#[test]
fn upserts_are_found_before_and_after_the_links_are_copied_again() {
    let dim = 16;
    let arts: Vec<_> = (1..=1000i64)
        .map(|id| (id, format!("h{id}"), vec![rand_vec(id as u64, dim)]))
        .collect();
    let idx = VectorIndex::build(dim, arts);
    let graph_only = SearchParams {
        ef: 64,
        exact_below: 0,
        exact_fraction: 0.0,
    };
    let covered = |idx: &VectorIndex| idx.inner.load().table.read().unwrap().links.covered;
    assert_eq!(covered(&idx), 1000);
    // A new article is newer than the copied links: scanned exactly, found.
    let v = rand_vec(77_777, dim);
    idx.upsert(5000, "n".into(), std::slice::from_ref(&v));
    assert_eq!(covered(&idx), 1000);
    let all = Allowed::from_ids((1..=6000).collect());
    let (h, plan) = idx.search(&v, &all, 3, graph_only);
    assert_eq!((h[0].id, plan), (5000, Plan::Graph));
    // Enough inserts copy the links again; every article stays findable
    // from its own vector, and updates leave no stale hit.
    for id in 5001..5000 + RECOPY_AFTER as i64 + 10 {
        idx.upsert(id, "n".into(), &[rand_vec(id as u64, dim)]);
    }
    idx.upsert(5000, "m".into(), &[rand_vec(1, dim)]);
    assert!(covered(&idx) > 1000);
    assert_eq!(idx.self_recall(), 1.0);
    for id in (5001..5000 + RECOPY_AFTER as i64 + 10).step_by(37) {
        let (h, _) = idx.search(&rand_vec(id as u64, dim), &all, 1, graph_only);
        assert_eq!(h[0].id, id);
    }
    let (h, _) = idx.search(&v, &all, 10, graph_only);
    assert!(h.iter().all(|a| a.id != 5000 || a.similarity < 0.99));
    // A selective filter walked through the graph still gives k allowed hits.
    let few = Allowed::from_ids((1..=1000).filter(|i| i % 50 == 0).collect());
    let (h, plan) = idx.search(&v, &few, 10, graph_only);
    assert_eq!(plan, Plan::Graph);
    assert_eq!(h.len(), 10);
    assert!(h.iter().all(|a| a.id % 50 == 0));
    let exact: Vec<i64> = idx
        .search_exact(&v, &few, 10)
        .iter()
        .map(|a| a.id)
        .collect();
    let got: Vec<i64> = h.iter().map(|a| a.id).collect();
    assert_eq!(got, exact);
}
