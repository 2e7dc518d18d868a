//! Slows down password guessing without letting a guesser lock anyone out (OWASP's
//! "Authentication Cheat Sheet: account lockout" advice: throttle, don't lock). Three counters
//! over a sliding [`WINDOW`]:
//!
//! - one username from one address: [`PER_USER_AND_ADDRESS`] failures, then that address waits
//!   out the window. A guesser elsewhere does not touch the real user's own address.
//! - one address, any usernames: [`PER_ADDRESS`] failures (password spraying), then it waits.
//! - one username, any address: past [`USER_BACKOFF_AFTER`] failures, attempts from addresses
//!   where the user has never logged in must be spaced by a delay that doubles with each failure
//!   (at most [`USER_BACKOFF_MAX`]). Distributed guessing slows down; the user's known addresses
//!   are exempt, so the correct password from them is never refused by it.
//!
//! Every attempt takes its place in the counts *before* its password is checked, in the same
//! step as the limit check and under one lock, so parallel attempts cannot all slip past a
//! limit while their hashes are computed. A successful attempt gives its place back.
//!
//! Counted in this server's memory; with several nodes each node counts its own attempts.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const PER_USER_AND_ADDRESS: usize = 5;
pub const PER_ADDRESS: usize = 30;
pub const USER_BACKOFF_AFTER: usize = 10;
pub const USER_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long an address stays known after a successful login from it.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Keys kept before idle ones are forgotten, so guessing cannot grow memory without end.
const MAX_KEYS: usize = 10_000;
/// Failures kept per username for the backoff (enough to reach its maximum).
const MAX_USER_FAILURES: usize = USER_BACKOFF_AFTER + 16;

#[derive(Default)]
pub struct LoginThrottle {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Attempt times (failed or still being checked) per counter key.
    attempts: HashMap<String, VecDeque<Instant>>,
    /// Per username: the addresses they logged in from, and when last.
    known: HashMap<String, HashMap<String, Instant>>,
}

/// An attempt that holds its place in the counts until it is known to have succeeded.
#[must_use = "report a success with LoginThrottle::succeeded; dropping it counts as a failure"]
pub struct Attempt {
    username: String,
    address: String,
    at: Instant,
}

impl LoginThrottle {
    /// Checks every limit and, when none is reached, counts this attempt as a failure until
    /// [`LoginThrottle::succeeded`] says otherwise. `Err(wait)` says how long to wait.
    pub fn begin(&self, username: &str, address: Option<&str>) -> Result<Attempt, Duration> {
        self.begin_at(username, address, Instant::now())
    }

    fn begin_at(
        &self,
        username: &str,
        address: Option<&str>,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let address = address.unwrap_or("unknown");
        let mut state = self
            .state
            .lock()
            .expect("the throttle lock is never poisoned");
        let pair = pair_key(username, address);
        let by_address = address_key(address);
        let by_user = user_key(username);
        let mut wait = Duration::ZERO;
        for (key, limit) in [(&pair, PER_USER_AND_ADDRESS), (&by_address, PER_ADDRESS)] {
            let times = state.recent(key, now);
            if times.len() >= limit {
                let oldest = *times.front().expect("at least `limit` entries");
                wait = wait.max(WINDOW.saturating_sub(now.duration_since(oldest)));
            }
        }
        if !state.is_known(username, address, now) {
            let times = state.recent(&by_user, now);
            if times.len() >= USER_BACKOFF_AFTER {
                let doublings = (times.len() - USER_BACKOFF_AFTER).min(16) as u32;
                let delay = Duration::from_secs(1 << doublings).min(USER_BACKOFF_MAX);
                let last = *times.back().expect("at least one entry");
                wait = wait.max(delay.saturating_sub(now.duration_since(last)));
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in [pair, by_address, by_user] {
            let times = state.attempts.entry(key).or_default();
            times.push_back(now);
            while times.len() > MAX_USER_FAILURES.max(PER_ADDRESS) {
                times.pop_front();
            }
        }
        state.forget_idle(now);
        Ok(Attempt {
            username: username.to_owned(),
            address: address.to_owned(),
            at: now,
        })
    }

    /// The attempt logged in: it gives back its place, clears the failures of this username
    /// from this address, and makes the address known for the username.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut state = self
            .state
            .lock()
            .expect("the throttle lock is never poisoned");
        state
            .attempts
            .remove(&pair_key(&attempt.username, &attempt.address));
        for key in [address_key(&attempt.address), user_key(&attempt.username)] {
            if let Some(times) = state.attempts.get_mut(&key)
                && let Some(position) = times.iter().rposition(|&at| at == attempt.at)
            {
                times.remove(position);
            }
        }
        state
            .known
            .entry(attempt.username)
            .or_default()
            .insert(attempt.address, attempt.at);
    }
}

impl State {
    /// The attempts under `key` still inside the window.
    fn recent(&mut self, key: &str, now: Instant) -> VecDeque<Instant> {
        let Some(times) = self.attempts.get_mut(key) else {
            return VecDeque::new();
        };
        while times
            .front()
            .is_some_and(|&at| now.duration_since(at) >= WINDOW)
        {
            times.pop_front();
        }
        times.clone()
    }

    fn is_known(&self, username: &str, address: &str, now: Instant) -> bool {
        self.known
            .get(username)
            .and_then(|addresses| addresses.get(address))
            .is_some_and(|&at| now.duration_since(at) < KNOWN_FOR)
    }

    fn forget_idle(&mut self, now: Instant) {
        if self.attempts.len() > MAX_KEYS {
            self.attempts.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|&at| now.duration_since(at) < WINDOW)
            });
        }
        if self.known.len() > MAX_KEYS {
            self.known.retain(|_, addresses| {
                addresses.retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
                !addresses.is_empty()
            });
        }
    }
}

fn pair_key(username: &str, address: &str) -> String {
    format!("pair:{username}@{address}")
}

fn address_key(address: &str) -> String {
    format!("addr:{address}")
}

fn user_key(username: &str) -> String {
    format!("user:{username}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(throttle: &LoginThrottle, user: &str, address: &str) {
        drop(
            throttle
                .begin(user, Some(address))
                .expect("not yet throttled"),
        );
    }

    #[test]
    fn refuses_a_username_from_one_address_after_five_failures() {
        let throttle = LoginThrottle::default();
        for _ in 0..PER_USER_AND_ADDRESS {
            fail(&throttle, "alice", "10.0.0.1");
        }
        let wait = throttle.begin("alice", Some("10.0.0.1")).err().unwrap();
        assert!(wait > Duration::from_secs(14 * 60));
        assert!(throttle.begin("bob", Some("10.0.0.1")).is_ok());
    }

    #[test]
    fn guessing_elsewhere_does_not_lock_the_user_out_of_another_address() {
        let throttle = LoginThrottle::default();
        for _ in 0..PER_USER_AND_ADDRESS {
            fail(&throttle, "admin", "10.0.0.66");
        }
        assert!(throttle.begin("admin", Some("10.0.0.1")).is_ok());
    }

    #[test]
    fn refuses_an_address_that_tries_many_usernames() {
        let throttle = LoginThrottle::default();
        for n in 0..PER_ADDRESS {
            fail(&throttle, &format!("user{n}"), "10.0.0.9");
        }
        assert!(throttle.begin("someone-new", Some("10.0.0.9")).is_err());
        assert!(throttle.begin("someone-new", Some("10.0.0.10")).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_before_their_outcome_is_known() {
        let throttle = LoginThrottle::default();
        let in_flight: Vec<Attempt> = (0..PER_USER_AND_ADDRESS)
            .map(|_| throttle.begin("alice", Some("10.0.0.1")).unwrap())
            .collect();
        assert!(throttle.begin("alice", Some("10.0.0.1")).is_err());
        drop(in_flight);
    }

    #[test]
    fn success_gives_back_its_place_and_clears_the_pair() {
        let throttle = LoginThrottle::default();
        for _ in 0..PER_USER_AND_ADDRESS - 1 {
            fail(&throttle, "alice", "10.0.0.1");
        }
        let attempt = throttle.begin("alice", Some("10.0.0.1")).unwrap();
        throttle.succeeded(attempt);
        for _ in 0..PER_USER_AND_ADDRESS {
            fail(&throttle, "alice", "10.0.0.1");
        }
        assert!(throttle.begin("alice", Some("10.0.0.1")).is_err());
    }

    #[test]
    fn distributed_guessing_backs_off_but_known_addresses_are_exempt() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        let home = throttle.begin_at("admin", Some("10.0.0.1"), start).unwrap();
        throttle.succeeded(home);
        for n in 0..USER_BACKOFF_AFTER {
            let address = format!("10.9.0.{n}");
            drop(throttle.begin_at("admin", Some(&address), start).unwrap());
        }
        let wait = throttle
            .begin_at("admin", Some("10.9.1.1"), start)
            .err()
            .unwrap();
        assert_eq!(wait, Duration::from_secs(1));
        drop(
            throttle
                .begin_at("admin", Some("10.9.1.1"), start + Duration::from_secs(1))
                .unwrap(),
        );
        let longer = throttle
            .begin_at("admin", Some("10.9.1.2"), start + Duration::from_secs(1))
            .err()
            .unwrap();
        assert_eq!(longer, Duration::from_secs(2));
        assert!(
            throttle.begin_at("admin", Some("10.0.0.1"), start).is_ok(),
            "the user's own address is not slowed down"
        );
    }
}
