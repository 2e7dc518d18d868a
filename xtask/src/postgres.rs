//! Finding the PostgreSQL server the test suite runs against.

use std::{
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn test_url() -> String {
    std::env::var("LOUPE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// `host:port` of a `postgres://user:password@host:port/db` URL (port 5432 when absent).
pub fn host_and_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    if host_port.is_empty() {
        return None;
    }
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    Some(if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    })
}

/// Whether something accepts TCP connections where the URL points. The tests themselves then
/// report anything more specific (authentication, permissions).
pub fn answers(url: &str) -> bool {
    let Some(address) = host_and_port(url) else {
        return false;
    };
    let Ok(addresses) = address.to_socket_addrs() else {
        return false;
    };
    addresses
        .into_iter()
        .any(|address| TcpStream::connect_timeout(&address, Duration::from_secs(3)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn reads_host_and_port_from_urls() {
        assert_eq!(
            host_and_port(super::DEFAULT_URL).as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            host_and_port("postgres://u:p@db.local/x").as_deref(),
            Some("db.local:5432")
        );
        assert_eq!(
            host_and_port("postgres://db:6543").as_deref(),
            Some("db:6543")
        );
        assert_eq!(host_and_port("not a url"), None);
    }
}
