//! KMT's HTTP API and command line.
//!
//! `routes` holds thin handlers; `app` builds the router and runs the
//! server; `metrics` serves Prometheus metrics; `cli` implements the `kmt`
//! subcommands.

pub mod app;
pub mod cli;
pub mod error;
pub mod extract;
pub mod guard;
pub mod limit;
pub mod metrics;
pub mod otlp;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod web;

/// The sample knowledge base compiled into the binary.
pub mod corpus {
    include!(concat!(env!("OUT_DIR"), "/corpus.rs"));
}
