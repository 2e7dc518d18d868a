//! A terminal's screen as the recording sees it: asciinema's virtual terminal ([`avt`]) fed
//! with the session's output, for keyframes (what the screen shows at a point, as escape
//! sequences that draw it) and for the text of a recording (escape sequences resolved, lines as
//! they scrolled by).
//!
//! A terminal's bytes are UTF-8 cut anywhere; [`Utf8Carry`] holds a character split between two
//! pieces until its end arrives, and bytes that are not UTF-8 become U+FFFD as a terminal
//! shows them.

use avt::{Terminal, observer::Transcript};

/// Columns and rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

impl Size {
    /// 80×24, what a terminal that says nothing has (VT100's size).
    pub const DEFAULT: Size = Size { cols: 80, rows: 24 };

    /// `COLSxROWS`, asciicast's form of a resize and the text of a resize event.
    pub fn to_text(self) -> String {
        format!("{}x{}", self.cols, self.rows)
    }

    /// Reads [`Size::to_text`]'s form back.
    pub fn parse(text: &str) -> Option<Size> {
        let (cols, rows) = text.split_once('x')?;
        let size = Size {
            cols: cols.parse().ok()?,
            rows: rows.parse().ok()?,
        };
        (size.cols > 0 && size.rows > 0).then_some(size)
    }
}

/// Decodes UTF-8 that arrives in pieces cut anywhere.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    /// The start of a character whose end has not arrived (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8Carry {
    /// The text of `bytes` after what was carried; an unfinished character at the end is kept
    /// for the next piece.
    pub fn decode(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(bytes);
        let mut text = String::with_capacity(input.len());
        let mut rest = input.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    return text;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).expect("checked"));
                    match error.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            self.pending = after.to_vec();
                            return text;
                        }
                    }
                }
            }
        }
    }
}

/// The screen of a running or replayed terminal session.
pub struct Screen {
    terminal: Terminal,
    carry: Utf8Carry,
}

impl Screen {
    pub fn new(size: Size) -> Screen {
        Screen {
            terminal: Terminal::new(usize::from(size.cols.max(1)), usize::from(size.rows.max(1)))
                .expect("a size of at least 1x1"),
            carry: Utf8Carry::default(),
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let text = self.carry.decode(bytes);
        self.terminal.feed(text.as_str());
    }

    pub fn resize(&mut self, size: Size) {
        self.terminal
            .resize(usize::from(size.cols), usize::from(size.rows));
    }

    pub fn size(&self) -> Size {
        let (cols, rows) = self.terminal.size();
        Size {
            cols: cols as u16,
            rows: rows as u16,
        }
    }

    /// Escape sequences that draw this screen (contents, colours, cursor, modes) on a blank
    /// terminal of the same size: a keyframe.
    pub fn dump(&self) -> String {
        self.terminal.dump()
    }

    /// The visible lines' text, trailing spaces trimmed.
    pub fn lines(&self) -> Vec<String> {
        self.terminal
            .screen()
            .visible_lines()
            .map(|line| line.text().trim_end().to_owned())
            .collect()
    }
}

/// A recording's text: the lines a terminal showed, in order, each once, as they scrolled off
/// the top or were cleared, and at the end what was left on the screen. Memory stays at one
/// screen whatever the recording's length.
pub struct Transcriber {
    terminal: Terminal,
    transcript: Transcript,
    carry: Utf8Carry,
}

impl Transcriber {
    pub fn new(size: Size) -> Transcriber {
        Transcriber {
            terminal: Terminal::with_scrollback(
                usize::from(size.cols.max(1)),
                usize::from(size.rows.max(1)),
                Some(0),
            )
            .expect("a size of at least 1x1"),
            transcript: Transcript::new(),
            carry: Utf8Carry::default(),
        }
    }

    /// The lines `bytes` completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let text = self.carry.decode(bytes);
        self.terminal.feed_with(text.as_str(), &mut self.transcript)
    }

    pub fn resize(&mut self, size: Size) -> Vec<String> {
        self.terminal.resize_with(
            usize::from(size.cols),
            usize::from(size.rows),
            &mut self.transcript,
        )
    }

    /// The visible lines as they read now, trailing spaces trimmed.
    pub fn screen(&self) -> Vec<String> {
        self.terminal
            .screen()
            .visible_lines()
            .map(|line| line.text().trim_end().to_owned())
            .collect()
    }

    /// The lines left on the screen.
    pub fn finish(self) -> Vec<String> {
        self.transcript.finish(&self.terminal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_cut_between_pieces_are_whole_and_bad_bytes_are_replaced() {
        let mut carry = Utf8Carry::default();
        let bytes = "é€😀".as_bytes();
        let mut text = String::new();
        for byte in bytes {
            text.push_str(&carry.decode(&[*byte]));
        }
        assert_eq!(text, "é€😀");
        assert_eq!(carry.decode(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn a_keyframe_draws_the_same_screen_on_a_blank_terminal() {
        let mut screen = Screen::new(Size { cols: 20, rows: 4 });
        screen.feed(b"one\r\n\x1b[1;31mtwo\x1b[0m\r\nthree\x1b[2;2H");
        let mut replayed = Screen::new(screen.size());
        replayed.feed(screen.dump().as_bytes());
        assert_eq!(replayed.lines(), screen.lines());
        assert_eq!(replayed.lines()[..3], ["one", "two", "three"]);
        assert_eq!(replayed.dump(), screen.dump());
    }

    #[test]
    fn the_text_of_a_recording_has_each_line_once_with_escapes_resolved() {
        let mut transcriber = Transcriber::new(Size { cols: 20, rows: 2 });
        let mut lines = Vec::new();
        for piece in [
            &b"$ echo hel"[..],
            b"lo\r\nhello\r\n",
            b"50%\r100%\r\n\x1b[32m$ \x1b[0m",
        ] {
            lines.extend(transcriber.feed(piece));
        }
        lines.extend(transcriber.finish());
        assert_eq!(lines, ["$ echo hello", "hello", "100%", "$"]);
        assert_eq!(
            Size::parse("120x40"),
            Some(Size {
                cols: 120,
                rows: 40
            })
        );
        assert_eq!(Size::parse("0x40"), None);
    }
}
