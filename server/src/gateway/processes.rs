//! Programs Loupe starts never outlive it unobserved. Each command session's process group is
//! stored with the leader's start time as it is spawned; when a server starts again after dying,
//! it looks for the programs its sessions left running, stops those that are still the same
//! process (same group id and start time, so a recycled id is never hit), and the session's
//! record says which happened.
//!
//! The start time is field 22 of `/proc/<pid>/stat` (proc(5)), in clock ticks since boot.

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use crate::store::{Store, StoreError};

/// The start time of process `pid`, if it exists (Linux `/proc`).
pub fn start_time(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Stops what this node's sessions left running when it died, and marks those sessions
/// interrupted saying so. Returns how many programs were stopped.
pub async fn stop_left_behind(store: &Store, node_id: &str) -> Result<usize, StoreError> {
    let mut stopped = 0;
    for (session, group, started) in store.left_running_programs(node_id).await? {
        let still_there = u32::try_from(group)
            .ok()
            .and_then(start_time)
            .is_some_and(|now| now == started);
        let reason = if still_there
            && i32::try_from(group)
                .is_ok_and(|group| killpg(Pid::from_raw(group), Signal::SIGKILL).is_ok())
        {
            stopped += 1;
            format!(
                "the server stopped while the session was running; its program (process group {group}) was still running and was stopped when the server started again"
            )
        } else {
            "the server stopped while the session was running; its program had already ended when the server started again".to_owned()
        };
        store.interrupt_session(&session, &reason).await?;
    }
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_start_time() {
        let mine = start_time(std::process::id()).expect("this process exists");
        assert!(mine > 0);
        assert_eq!(start_time(std::process::id()), Some(mine), "stable");
        assert_eq!(start_time(u32::MAX), None);
    }
}
