//! Rate limiting of failed sign-ins, per account and per client address.
//!
//! A sliding window of failure times per key, in memory (each replica
//! limits on its own; an attacker spreading over replicas gets at most
//! replicas × the limit). The map is bounded: when it is full, keys whose
//! failures have all expired are dropped first, then the oldest keys.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per key within the window.
pub const MAX_FAILURES: usize = 5;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most keys remembered.
const MAX_KEYS: usize = 50_000;

/// Failed sign-ins by key (`user:NAME`, `addr:IP`).
#[derive(Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SignInLimiter {
    /// `Some(wait)` when any of `keys` is over the limit.
    pub fn blocked(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().ok()?;
        let mut wait = None;
        for k in keys {
            if let Some(q) = map.get_mut(k) {
                while q.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
                    q.pop_front();
                }
                if q.len() >= MAX_FAILURES {
                    let w = WINDOW.saturating_sub(now.duration_since(q[0]));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        wait
    }

    /// Records a failure against every key.
    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() + keys.len() > MAX_KEYS {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= WINDOW));
            while map.len() + keys.len() > MAX_KEYS {
                let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, q)| q.back().copied())
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                map.remove(&oldest);
            }
        }
        for k in keys {
            let q = map.entry(k.clone()).or_default();
            q.push_back(now);
            while q.len() > MAX_FAILURES {
                q.pop_front();
            }
        }
    }

    /// Forgets the failures of an account after a successful sign-in.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_forgets_on_success() {
        let l = SignInLimiter::default();
        let keys = vec!["user:a".to_string(), "addr:1".to_string()];
        for _ in 0..MAX_FAILURES {
            assert!(l.blocked(&keys).is_none());
            l.failed(&keys);
        }
        assert!(l.blocked(&keys).is_some());
        assert!(l.blocked(&["addr:1".to_string()]).is_some());
        l.succeeded("user:a");
        assert!(l.blocked(&["user:a".to_string()]).is_none());
    }
}
