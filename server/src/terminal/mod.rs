//! Terminal sessions: interactive terminals on shell connections (a program in a local PTY,
//! [`pty`]) and ssh connections (a shell on an SSH server, [`ssh`]), recorded with their timing
//! ([`record`]) and keyframes of the screen ([`screen`]).
//!
//! Every way in (the browser's terminal and `loupe ssh` over the terminal WebSocket, and `ssh`
//! through Loupe's own SSH listener, [`listener`]) hands the relay ([`relay`]) a
//! [`relay::ClientEnd`]; the relay opens the target ([`target`]), passes bytes both ways,
//! records them, and ends the session when either side leaves or someone stops it. Command review does not
//! apply to an interactive terminal (there is no command to show a reviewer before it runs);
//! just-in-time access does, at connect.

pub mod listener;
pub mod pty;
pub mod record;
pub mod relay;
pub mod screen;
pub mod settings;
pub mod ssh;
pub mod target;
