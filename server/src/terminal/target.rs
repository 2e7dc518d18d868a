//! What a terminal session talks to, whatever it is (a program in a local PTY, a shell on an
//! SSH server): one task per opened target owns it and speaks through two channels, so the
//! relay treats every kind the same.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::screen::Size;

/// Output pieces the target may run ahead of the relay by; past this its task waits, and the
/// program with it (flow control, as a slow terminal gives).
pub const OUTPUT_QUEUE: usize = 64;

/// From the target, in the order it happened.
#[derive(Debug)]
pub enum FromTarget {
    Output(Bytes),
    /// The program ended with this exit status (none: not said). The target's output has all
    /// been sent before it; nothing follows.
    Exited(Option<i32>),
    /// The program was ended by this signal (`SIGKILL`, …), so it has no exit status (POSIX
    /// `wait`; SSH's `exit-signal`, RFC 4254 §6.10). As for `Exited`, nothing follows.
    Signalled(String),
    /// The target went away without an exit status; why. Nothing follows.
    Lost(String),
}

/// To the target.
#[derive(Debug)]
pub enum ToTarget {
    /// Keystrokes.
    Input(Bytes),
    Resize(Size),
}

/// An opened target: dropping `to` closes it (the program is hung up on, the SSH channel
/// closed), after which `from` ends.
pub struct Opened {
    pub from: mpsc::Receiver<FromTarget>,
    pub to: mpsc::Sender<ToTarget>,
}
