//! HTTP routes. Handlers are thin: extract → check the endpoint's
//! permission → one engine call → map the result.

pub mod analytics;
pub mod articles;
pub mod audit;
pub mod channels;
pub mod health;
pub mod notifications;
pub mod prompts;
pub mod recommend;
pub mod rules;
pub mod search;
pub mod session;
pub mod suggest;
pub mod usage;
pub mod users;
pub mod workflow;
