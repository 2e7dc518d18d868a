//! Loupe's API tests, in one binary. Each test starts a real server on port 0 over a fresh
//! database and asserts on what a client sees. The backend comes from `LOUPE_TEST_BACKEND`
//! (`sqlite`, the default, or `postgres`); `cargo xtask test` runs this binary once for each.

mod helpers;

mod access;
#[path = "../support/certificates.rs"]
mod certificates;
mod cli;
mod crash;
mod downloads;
mod fuzz;
mod gateway;
mod health;
mod identity;
mod live;
mod mysql_wire;
mod openapi;
#[path = "../support/password_postgres.rs"]
mod password_postgres;
#[path = "../support/ports.rs"]
mod ports;
mod reviews;
mod routes;
mod security;
mod sessions;
mod settings;
#[path = "../support/sshd.rs"]
mod sshd;
mod statements;
mod store;
#[path = "../support/terminal_session.rs"]
mod terminal_session;
mod terminals;
mod text;
#[path = "../support/tls_mariadb.rs"]
mod tls_mariadb;
mod values;
mod web;
mod wire;
