//! Pieces shared by several pages.

pub mod feedback;
pub mod live_terminal;
pub mod menu;
pub mod output_view;
pub mod period;
pub mod review_bits;
pub mod rows_view;
pub mod session_bits;
pub mod share_panel;
pub mod shell;
pub mod terminal_player;
pub mod terminal_text;
pub mod timeline;
