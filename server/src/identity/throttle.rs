//! Slows down password guessing: after too many failed logins for one username, or from one
//! network address, within a window, further attempts are refused until the window has passed.
//! Counted in this server's memory; with several nodes each node counts its own attempts.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

const WINDOW: Duration = Duration::from_secs(15 * 60);
const PER_USERNAME: usize = 5;
const PER_ADDRESS: usize = 30;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// `Err(wait)` when this username or address has failed too often lately.
    pub fn check(&self, username: &str, address: Option<&str>) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .expect("the throttle lock is never poisoned");
        let keys = keys(username, address);
        let mut wait = Duration::ZERO;
        for (key, limit) in keys {
            if let Some(times) = failures.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|&at| now.duration_since(at) >= WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = *times.front().expect("at least `limit` entries");
                    wait = wait.max(WINDOW - now.duration_since(oldest));
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    pub fn record_failure(&self, username: &str, address: Option<&str>) {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .expect("the throttle lock is never poisoned");
        for (key, limit) in keys(username, address) {
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Keep at most what the check needs, so an attacker cannot grow memory without end.
            while times.len() > limit {
                times.pop_front();
            }
        }
        // Forget idle keys now and then, for the same reason.
        if failures.len() > 10_000 {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|&at| now.duration_since(at) < WINDOW)
            });
        }
    }

    /// A successful login clears the username's count (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut failures = self
            .failures
            .lock()
            .expect("the throttle lock is never poisoned");
        failures.remove(&format!("user:{username}"));
    }
}

fn keys(username: &str, address: Option<&str>) -> Vec<(String, usize)> {
    let mut keys = vec![(format!("user:{username}"), PER_USERNAME)];
    if let Some(address) = address {
        keys.push((format!("addr:{address}"), PER_ADDRESS));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_username_after_five_failures() {
        let throttle = LoginThrottle::default();
        for _ in 0..PER_USERNAME {
            assert!(throttle.check("alice", Some("10.0.0.1")).is_ok());
            throttle.record_failure("alice", Some("10.0.0.1"));
        }
        let wait = throttle.check("alice", Some("10.0.0.2")).unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60));
        assert!(throttle.check("bob", Some("10.0.0.2")).is_ok());
    }

    #[test]
    fn refuses_an_address_that_tries_many_usernames() {
        let throttle = LoginThrottle::default();
        for n in 0..PER_ADDRESS {
            throttle.record_failure(&format!("user{n}"), Some("10.0.0.9"));
        }
        assert!(throttle.check("someone-new", Some("10.0.0.9")).is_err());
        assert!(throttle.check("someone-new", Some("10.0.0.10")).is_ok());
    }

    #[test]
    fn success_clears_the_username() {
        let throttle = LoginThrottle::default();
        for _ in 0..PER_USERNAME {
            throttle.record_failure("alice", None);
        }
        throttle.record_success("alice");
        assert!(throttle.check("alice", None).is_ok());
    }
}
