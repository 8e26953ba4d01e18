//! Per-client request rate limiting: a token bucket per client address.
//!
//! Each client (its IP address, or the first `X-Forwarded-For` entry when
//! the server sits behind a trusted proxy) may make `per_sec` requests per
//! second with bursts of `burst`; beyond that it gets 429 with
//! `Retry-After`. Probes (`/healthz`, `/readyz`, `/metrics`) are exempt. The
//! bucket map is bounded: idle clients are forgotten first.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Most clients remembered.
const MAX_CLIENTS: usize = 100_000;

/// Limits per client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_sec: f64,
    /// Burst size.
    pub burst: f64,
    /// Take the client from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every client.
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Limiter {
    /// A limiter with these limits.
    pub fn new(limit: RateLimit) -> Self {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`; `Err(seconds to wait)` when empty.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let Ok(mut map) = self.buckets.lock() else {
            return Ok(());
        };
        if map.len() >= MAX_CLIENTS && !map.contains_key(&client) {
            // Forget clients whose buckets have refilled: they lose nothing.
            let (rate, burst) = (self.limit.per_sec, self.limit.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if map.len() >= MAX_CLIENTS {
                map.clear();
            }
        }
        let b = map.entry(client).or_insert(Bucket {
            tokens: self.limit.burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * self.limit.per_sec;
        b.tokens = (b.tokens + refill).min(self.limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.limit.per_sec).ceil().max(1.0) as u64)
        }
    }

    fn client(&self, req: &Request) -> Option<IpAddr> {
        if self.limit.trust_forwarded_for {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    }
}

/// The middleware: 429 with `Retry-After` for clients over their limit.
pub async fn limit(
    State(limiter): State<std::sync::Arc<Limiter>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    if let Some(client) = limiter.client(&req) {
        if let Err(wait) = limiter.take(client, Instant::now()) {
            return ApiError::RateLimited(wait).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_bursts_then_refills() {
        let l = Limiter::new(RateLimit {
            per_sec: 10.0,
            burst: 3.0,
            trust_forwarded_for: false,
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(ip, t0).is_ok());
        }
        assert_eq!(l.take(ip, t0), Err(1));
        assert!(
            l.take(ip, t0 + Duration::from_millis(150)).is_ok(),
            "refilled 1.5 tokens"
        );
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.take(other, t0).is_ok(), "clients are limited separately");
    }
}
