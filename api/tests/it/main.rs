//! The API crate's integration tests: a real `kmt` server (in-process, on a
//! loopback port) over a real store — SQLite and PostgreSQL.

mod audit;
mod authz;
mod backup;
mod cli;
mod cluster;
mod contract;
mod deploy;
mod harness;
mod hostile;
mod http;
mod import;
mod leak;
mod metrics;
mod notify;
mod otlp;
mod promote;
mod prompts;
mod receivers;
mod recommend;
mod replica;
// The S3-compatible test server of the engine's tests, shared as a file.
#[path = "../../../engine/tests/it/s3server.rs"]
mod s3server;
mod sections;
mod semantic;
mod session;
mod suggest;
mod usage;
mod usage_analytics;
mod users;
mod workflow;
