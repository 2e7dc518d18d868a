//! Free ports for listeners a test (or bench) starts a moment after choosing them: Loupe's wire
//! listeners, sshd, a PostgreSQL of its own.
//!
//! A port asked of the kernel (`bind(…:0)`) comes from its ephemeral range, where every outgoing
//! connection also takes its local port: one opened between the choice and the bind (a database
//! pool's, another test's) takes the port, and a listener on `0.0.0.0` then fails to bind. So the
//! port is chosen below the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), where
//! only another listener can be, and checked free on every address.

use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out; below it are well-known services' ports.
const LOWEST: u16 = 10_000;

/// Successive picks within this process start from different ports.
static PICKS: AtomicU32 = AtomicU32::new(0);

/// A port nothing listens on now, on any address, outside the ephemeral range.
pub fn free_port() -> u16 {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|low| *low > LOWEST + 1_000)
        .unwrap_or(32_768);
    let span = u32::from(ephemeral - LOWEST);
    // Processes running side by side (the two stores' suites, a bench) start apart.
    let start = std::process::id()
        .wrapping_mul(7_919)
        .wrapping_add(PICKS.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729));
    (0..span)
        .map(|step| LOWEST + ((start.wrapping_add(step)) % span) as u16)
        .find(|port| std::net::TcpListener::bind(("0.0.0.0", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}
