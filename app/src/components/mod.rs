//! Pieces shared by several pages.

pub mod feedback;
pub mod shell;
