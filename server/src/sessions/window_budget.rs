//! With `DISABLE_SESSIONS_DOWNLOAD`, sessions can still be read in the browser, window by
//! window — which a script could also do to pull everything a download would have given. This
//! bounds how many bytes of output and rows one user reads through windows per period
//! (`LOUPE_WINDOW_READ_BYTES` per `LOUPE_WINDOW_READ_PERIOD`): plenty for reading, too little for
//! a bulk export. Each window read is also audited while downloads are disabled.
//!
//! Counted per user in this server's memory, in fixed periods that start at a user's first read.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct WindowBudget {
    limit: u64,
    period: Duration,
    used: Mutex<HashMap<String, (Instant, u64)>>,
}

/// Users whose periods are kept before the finished ones are forgotten.
const MAX_USERS: usize = 10_000;

impl WindowBudget {
    pub fn new(limit_bytes: u64, period: Duration) -> WindowBudget {
        WindowBudget {
            limit: limit_bytes,
            period,
            used: Mutex::default(),
        }
    }

    /// Counts `bytes` read by `user`; `Err(wait)` when that would pass the limit, saying when
    /// the user's period ends (nothing is counted then).
    pub fn charge(&self, user: &str, bytes: u64) -> Result<(), Duration> {
        self.charge_at(user, bytes, Instant::now())
    }

    fn charge_at(&self, user: &str, bytes: u64, now: Instant) -> Result<(), Duration> {
        let mut used = self.used.lock().expect("the budget lock is never poisoned");
        if used.len() > MAX_USERS {
            let period = self.period;
            used.retain(|_, (started, _)| now.duration_since(*started) < period);
        }
        let (started, spent) = used.entry(user.to_owned()).or_insert((now, 0));
        if now.duration_since(*started) >= self.period {
            (*started, *spent) = (now, 0);
        }
        if spent.saturating_add(bytes) > self.limit {
            return Err(self.period.saturating_sub(now.duration_since(*started)));
        }
        *spent += bytes;
        Ok(())
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_reads_past_the_limit_until_the_period_ends() {
        let budget = WindowBudget::new(100, Duration::from_secs(60));
        let start = Instant::now();
        assert!(budget.charge_at("alice", 60, start).is_ok());
        assert!(budget.charge_at("alice", 40, start).is_ok());
        let wait = budget
            .charge_at("alice", 1, start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(budget.charge_at("bob", 100, start).is_ok(), "per user");
        assert!(
            budget
                .charge_at("alice", 100, start + Duration::from_secs(60))
                .is_ok()
        );
    }
}
