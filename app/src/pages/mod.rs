//! One module per route.

pub mod admin;
pub mod login;
pub mod not_found;
pub mod reviews;
pub mod run;
pub mod session_detail;
pub mod sessions;
pub mod tokens;
