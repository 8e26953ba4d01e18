//! Helpers shared by the store conformance modules (`store_*`): snapshots
//! of what a failed write must leave untouched, audit-chain checks and task
//! filters.

use engine::store::audit::{chain_hash, GENESIS};
use engine::store::{AuditFilter, Store, TaskFilter};

/// Everything observable that a failed write must leave untouched.
pub async fn snapshot(store: &Store) -> (i64, i64, usize) {
    let audit = store
        .list_audit(&AuditFilter {
            after_id: 0,
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    (
        store.count_articles().await.unwrap(),
        store.outbox_head().await.unwrap(),
        audit.len(),
    )
}

/// Checks links and hashes of a chain read from its first row.
pub fn verify_chain(rows: &[engine::model::AuditEntry]) {
    let mut prev = GENESIS.to_string();
    for (i, e) in rows.iter().enumerate() {
        assert_eq!(e.id, i as i64 + 1, "ids are 1-based and dense");
        assert_eq!(e.prev_hash, prev, "row {} links to its predecessor", e.id);
        let h = chain_hash(
            &e.prev_hash,
            e.at,
            &e.actor,
            &e.action,
            &e.target,
            &e.details,
        );
        assert_eq!(e.hash, h, "row {} hash recomputes", e.id);
        prev = e.hash.clone();
    }
}

/// A filter for one role's open tasks.
pub fn for_role(role: &str) -> TaskFilter {
    TaskFilter {
        roles: vec![role.into()],
        ..TaskFilter::default()
    }
}

/// Asserts that the whole audit chain verifies.
pub async fn assert_chain_verifies(store: &Store) {
    let report = engine::store::audit::verify(store).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert!(report.rows > 0);
}

/// Every audit row's details, as text, for leak checks.
pub async fn audit_details(store: &Store) -> Vec<String> {
    let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
    rows.iter().map(|e| e.details.to_string()).collect()
}
