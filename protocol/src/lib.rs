//! Loupe's wire types: every request, response and message that crosses between the server, the
//! browser app and the CLI is defined here once, with serde only, so all three agree by
//! construction.

mod error;
mod settings;

pub use error::{ErrorBody, ErrorCode};
pub use settings::{Health, Settings};
