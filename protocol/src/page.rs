//! Keyset-paginated lists.

use serde::{Deserialize, Serialize};

/// One page of a list, newest first. Pass `next_cursor` back as `cursor` for the next page;
/// none means this was the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
