//! The engine's integration tests, one binary so the crate links once.
//! Add a `mod` line per area.

mod audit_ship;
mod common;
mod embed;
mod fuzz;
mod s3server;
mod search;
mod sections;
mod semantic;
mod snapshot;
mod store_accounts;
mod store_articles;
mod store_changes;
mod store_deliveries;
mod store_embeddings;
mod store_notifications;
mod store_review;
mod store_support;
mod store_tasks;
mod store_usage;
mod suggest;
