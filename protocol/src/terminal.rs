//! Terminal output as a log view shows it: the bytes a program wrote, read the way a terminal
//! reads them, into lines of styled spans.
//!
//! Escape sequences are parsed by [`vte`] (Alacritty's parser of the DEC ANSI state machine,
//! <https://vt100.net/emu/dec_ansi_parser>), so a sequence split across pieces is still one
//! sequence. What a log view keeps:
//!
//! - SGR (ECMA-48 §8.3.117) in full: foreground and background in the 16 standard colours, the
//!   xterm 256-colour palette (`38;5;n`, `48;5;n`) and 24-bit colour (`38;2;r;g;b`, also in the
//!   colon form of ITU T.416), bold, dim, italic, underline, inverse and each attribute's reset.
//! - Carriage return, backspace and erase-in-line (`CSI K`) act on the current line, so a
//!   progress line that redraws itself shows its last state.
//! - Everything else (OSC titles and hyperlinks, cursor movement between lines, screen clears,
//!   DCS strings) is never shown as text.
//!
//! The pen (the current style) is carried from one piece to the next by feeding them to one
//! [`Terminal`], and from one page to the next with a [`Carry`]: the pen, and an escape sequence
//! a page's edge cut in two.

use vte::{Params, Parser, Perform};

/// A colour as SGR names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Color {
    /// The view's own foreground or background.
    #[default]
    Default,
    /// A palette entry: 0–7 standard, 8–15 bright, 16–255 xterm's cube and greys.
    Indexed(u8),
    Rgb(u8, u8, u8),
}

impl Color {
    /// The colour as CSS: the 16 standard colours are the view's own (`var(--ansi-N)`, so a
    /// theme may tune them); the rest of the palette is xterm's (cube levels 0, 95, 135, 175,
    /// 215, 255; greys from 8 in steps of 10). `None` for the default.
    pub fn css(self) -> Option<String> {
        match self {
            Color::Default => None,
            Color::Indexed(index @ 0..=15) => Some(format!("var(--ansi-{index})")),
            Color::Indexed(index @ 16..=231) => {
                let cube = index - 16;
                let level = |step: u8| if step == 0 { 0 } else { 55 + step * 40 };
                let (r, g, b) = (level(cube / 36), level(cube / 6 % 6), level(cube % 6));
                Some(format!("rgb({r},{g},{b})"))
            }
            Color::Indexed(index) => {
                let grey = 8 + (index - 232) * 10;
                Some(format!("rgb({grey},{grey},{grey})"))
            }
            Color::Rgb(r, g, b) => Some(format!("rgb({r},{g},{b})")),
        }
    }
}

/// How a run of text is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Style {
    pub fg: Color,
    pub bg: Color,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    /// Foreground and background swapped (SGR 7).
    pub inverse: bool,
    /// Written to standard error: not SGR, but carried with the text it marks.
    pub stderr: bool,
}

impl Style {
    /// The colours to paint as CSS `(color, background)`, inverse applied: under inverse a
    /// default colour becomes the view's other default (`var(--output-bg)`, `var(--output-fg)`).
    pub fn paint(&self) -> (Option<String>, Option<String>) {
        if !self.inverse {
            return (self.fg.css(), self.bg.css());
        }
        let fg = self.bg.css().unwrap_or_else(|| "var(--output-bg)".into());
        let bg = self.fg.css().unwrap_or_else(|| "var(--output-fg)".into());
        (Some(fg), Some(bg))
    }
}

/// Text drawn in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub style: Style,
    pub text: String,
}

/// One line of output, without its line feed.
pub type Line = Vec<Span>;

/// What a stretch of output leaves for the text after it: the pen, and the start of an escape
/// sequence it began but did not finish (a window's edge can fall inside one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Carry {
    pub pen: Style,
    unfinished: String,
}

/// Reads output into lines. Feed it pieces in order; read [`Terminal::lines`] at any point.
pub struct Terminal {
    parser: Parser,
    screen: Screen,
    /// Text since the last escape that no sequence has ended yet.
    unfinished: String,
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::resume(&Carry::default())
    }
}

impl Terminal {
    /// A terminal that goes on where the text before left off.
    pub fn resume(carry: &Carry) -> Terminal {
        let mut terminal = Terminal {
            parser: Parser::new(),
            screen: Screen {
                pen: carry.pen,
                ..Screen::default()
            },
            unfinished: String::new(),
        };
        // Nothing of an unfinished sequence is drawn: it only puts the parser where it was.
        terminal.feed(&carry.unfinished, carry.pen.stderr);
        terminal
    }

    /// Reads `text`, written to standard error when `stderr` is set.
    pub fn feed(&mut self, text: &str, stderr: bool) {
        self.screen.pen.stderr = stderr;
        let (before, from_escape) = text.split_at(text.rfind('\u{1b}').unwrap_or(0));
        self.parser.advance(&mut self.screen, before.as_bytes());
        if !before.is_empty() && self.screen.ended {
            self.unfinished.clear();
        }
        self.screen.ended = false;
        self.parser
            .advance(&mut self.screen, from_escape.as_bytes());
        if self.screen.ended {
            self.unfinished.clear();
        } else if from_escape.starts_with('\u{1b}') {
            self.unfinished = from_escape.to_owned();
        } else if !self.unfinished.is_empty() {
            self.unfinished.push_str(from_escape);
        }
    }

    /// Where the next text goes on from.
    pub fn carry(&self) -> Carry {
        Carry {
            pen: self.screen.pen,
            unfinished: self.unfinished.clone(),
        }
    }

    /// The style the next text would be drawn in.
    pub fn pen(&self) -> Style {
        self.screen.pen
    }

    /// Whether a line has text and no line feed yet.
    pub fn is_mid_line(&self) -> bool {
        !self.screen.current.is_empty()
    }

    /// Every finished line, then the line being written if it has any text.
    pub fn lines(&self) -> Vec<Line> {
        let mut lines = self.screen.lines.clone();
        if !self.screen.current.is_empty() {
            lines.push(spans(&self.screen.current));
        }
        lines
    }
}

/// Columns a tab advances to (a multiple of eight, as terminals set their tab stops).
const TAB_STOP: usize = 8;
/// How far right a cursor movement may go: wider than any terminal, and a bound on what one
/// `CSI 65535 C` can make a viewer's tab allocate. Printed text itself is not bounded.
const MAX_CURSOR_COLUMN: usize = 4096;

#[derive(Default)]
struct Screen {
    pen: Style,
    /// A sequence ended (or text was printed, which only happens outside one) since this was
    /// last cleared.
    ended: bool,
    lines: Vec<Line>,
    /// The line being written, a character per column.
    current: Vec<(char, Style)>,
    cursor: usize,
}

impl Screen {
    fn put(&mut self, character: char) {
        let blank = (' ', Style::default());
        if self.cursor > self.current.len() {
            self.current.resize(self.cursor, blank);
        }
        if self.cursor == self.current.len() {
            self.current.push((character, self.pen));
        } else {
            self.current[self.cursor] = (character, self.pen);
        }
        self.cursor += 1;
    }

    /// Moves the cursor within the line, no further right than the text or [`MAX_CURSOR_COLUMN`].
    fn move_to(&mut self, column: usize) {
        self.cursor = column.min(MAX_CURSOR_COLUMN.max(self.current.len()));
    }

    fn new_line(&mut self) {
        let line = spans(&self.current);
        self.lines.push(line);
        self.current.clear();
        self.cursor = 0;
    }

    /// `CSI Ps K`: 0 erases from the cursor to the end, 1 from the start to the cursor, 2 all.
    fn erase_in_line(&mut self, mode: u16) {
        match mode {
            0 => self.current.truncate(self.cursor),
            1 => {
                let end = (self.cursor + 1).min(self.current.len());
                for cell in &mut self.current[..end] {
                    *cell = (' ', Style::default());
                }
            }
            2 => self.current.clear(),
            _ => {}
        }
    }

    fn select_graphic_rendition(&mut self, params: &Params) {
        if params.is_empty() {
            self.pen = reset(self.pen);
        }
        let mut params = params.iter();
        while let Some(param) = params.next() {
            let pen = &mut self.pen;
            match param[0] {
                0 => *pen = reset(*pen),
                1 => pen.bold = true,
                2 => pen.dim = true,
                3 => pen.italic = true,
                // `4:0` is "not underlined"; `4:1`…`4:5` are underline styles.
                4 => pen.underline = param.get(1) != Some(&0),
                7 => pen.inverse = true,
                21 => pen.underline = true,
                22 => (pen.bold, pen.dim) = (false, false),
                23 => pen.italic = false,
                24 => pen.underline = false,
                27 => pen.inverse = false,
                code @ 30..=37 => pen.fg = Color::Indexed((code - 30) as u8),
                38 => pen.fg = extended_color(param, &mut params).unwrap_or(pen.fg),
                39 => pen.fg = Color::Default,
                code @ 40..=47 => pen.bg = Color::Indexed((code - 40) as u8),
                48 => pen.bg = extended_color(param, &mut params).unwrap_or(pen.bg),
                49 => pen.bg = Color::Default,
                code @ 90..=97 => pen.fg = Color::Indexed((code - 90 + 8) as u8),
                code @ 100..=107 => pen.bg = Color::Indexed((code - 100 + 8) as u8),
                _ => {}
            }
        }
    }
}

/// SGR 0: every attribute off; whether the text is stderr is not SGR's to change.
fn reset(pen: Style) -> Style {
    Style {
        stderr: pen.stderr,
        ..Style::default()
    }
}

/// The colour of `38`/`48`, in the colon form (`38:5:n`, `38:2::r:g:b`, `38:2:r:g:b`) where
/// `param` carries it, else from the parameters that follow (`38;5;n`, `38;2;r;g;b`).
fn extended_color<'a>(param: &[u16], rest: &mut impl Iterator<Item = &'a [u16]>) -> Option<Color> {
    let byte = |value: u16| u8::try_from(value).ok();
    if param.len() > 1 {
        return match param[1] {
            5 => param.get(2).copied().and_then(byte).map(Color::Indexed),
            2 => {
                // With a colour-space id the components start one later.
                let components = if param.len() >= 6 {
                    &param[3..6]
                } else {
                    param.get(2..5)?
                };
                Some(Color::Rgb(
                    byte(components[0])?,
                    byte(components[1])?,
                    byte(components[2])?,
                ))
            }
            _ => None,
        };
    }
    let mut next = || rest.next().map(|param| param[0]);
    match next()? {
        5 => next().and_then(byte).map(Color::Indexed),
        2 => {
            let (r, g, b) = (next()?, next()?, next()?);
            Some(Color::Rgb(byte(r)?, byte(g)?, byte(b)?))
        }
        _ => None,
    }
}

/// Runs of equally styled characters as spans.
fn spans(cells: &[(char, Style)]) -> Line {
    let mut line: Line = Vec::new();
    for &(character, style) in cells {
        match line.last_mut() {
            Some(span) if span.style == style => span.text.push(character),
            _ => line.push(Span {
                style,
                text: character.to_string(),
            }),
        }
    }
    line
}

impl Perform for Screen {
    fn print(&mut self, character: char) {
        self.ended = true;
        self.put(character);
    }

    fn osc_dispatch(&mut self, _params: &[&[u8]], _bell_terminated: bool) {
        self.ended = true;
    }

    fn esc_dispatch(&mut self, _intermediates: &[u8], _ignore: bool, _byte: u8) {
        self.ended = true;
    }

    fn unhook(&mut self) {
        self.ended = true;
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | 0x0b | 0x0c => self.new_line(),
            b'\r' => self.cursor = 0,
            0x08 => self.cursor = self.cursor.saturating_sub(1),
            b'\t' => {
                let stop = (self.cursor / TAB_STOP + 1) * TAB_STOP;
                while self.cursor < stop {
                    self.put(' ');
                }
            }
            // Bell, shift in/out and the rest of C0 draw nothing.
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        self.ended = true;
        // Private sequences (`CSI ? 25 l`, `CSI > …`) and oversized ones change nothing here.
        if ignore || !intermediates.is_empty() {
            return;
        }
        let first = params.iter().next().map_or(0, |param| param[0]);
        match action {
            'm' => self.select_graphic_rendition(params),
            'K' => self.erase_in_line(first),
            // Cursor Horizontal Absolute, and forward and back within the line.
            'G' => self.move_to(usize::from(first.max(1)) - 1),
            'C' => self.move_to(self.cursor + usize::from(first.max(1))),
            'D' => self.cursor = self.cursor.saturating_sub(usize::from(first.max(1))),
            // Moves to other lines and screen edits have no meaning in a log: dropped.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(pieces: &[&str]) -> Vec<Line> {
        let mut terminal = Terminal::default();
        for piece in pieces {
            terminal.feed(piece, false);
        }
        terminal.lines()
    }

    fn text(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|line| line.iter().map(|span| span.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn osc_title_is_not_text_and_background_256_is_a_background() {
        let lines = render(&["\u{1b}]0;title\u{7}hi \u{1b}[48;5;32mX\u{1b}[0m\n"]);
        assert_eq!(text(&lines), ["hi X"]);
        let x = &lines[0][1];
        assert_eq!(x.text, "X");
        assert_eq!(x.style.bg, Color::Indexed(32));
        assert_eq!(x.style.fg, Color::Default);
        assert_eq!(x.style.paint(), (None, Some("rgb(0,135,215)".into())));
        assert_eq!(lines[0][0].style, Style::default());
    }

    #[test]
    fn truecolour_and_palette_in_both_notations() {
        let lines = render(&[
            "\u{1b}[38;2;255;100;0ma\u{1b}[38:2::1:2:3mb\u{1b}[38:5:196mc\u{1b}[48:2:9:8:7md\u{1b}[39;49me",
        ]);
        let styles: Vec<(Color, Color)> = lines[0]
            .iter()
            .map(|span| (span.style.fg, span.style.bg))
            .collect();
        assert_eq!(
            styles,
            [
                (Color::Rgb(255, 100, 0), Color::Default),
                (Color::Rgb(1, 2, 3), Color::Default),
                (Color::Indexed(196), Color::Default),
                (Color::Indexed(196), Color::Rgb(9, 8, 7)),
                (Color::Default, Color::Default),
            ]
        );
        assert_eq!(Color::Indexed(196).css().as_deref(), Some("rgb(255,0,0)"));
        assert_eq!(
            Color::Indexed(244).css().as_deref(),
            Some("rgb(128,128,128)")
        );
        assert_eq!(Color::Indexed(9).css().as_deref(), Some("var(--ansi-9)"));
    }

    #[test]
    fn attributes_and_their_resets() {
        let lines =
            render(&["\u{1b}[1;2;3;4;7ma\u{1b}[22mb\u{1b}[23;24mc\u{1b}[27md\u{1b}[4:0;91;104me"]);
        let styles: Vec<Style> = lines[0].iter().map(|span| span.style).collect();
        let all = Style {
            bold: true,
            dim: true,
            italic: true,
            underline: true,
            inverse: true,
            ..Style::default()
        };
        assert_eq!(styles[0], all);
        assert_eq!(
            styles[1],
            Style {
                bold: false,
                dim: false,
                ..all
            }
        );
        assert_eq!(
            styles[2],
            Style {
                inverse: true,
                ..Style::default()
            }
        );
        assert_eq!(styles[3], Style::default());
        assert_eq!(
            styles[4],
            Style {
                fg: Color::Indexed(9),
                bg: Color::Indexed(12),
                ..Style::default()
            }
        );
        assert_eq!(
            styles[0].paint(),
            (
                Some("var(--output-bg)".into()),
                Some("var(--output-fg)".into())
            )
        );
    }

    #[test]
    fn carriage_return_progress_shows_its_last_state() {
        let lines = render(&[
            "10%\r",
            "50%\r",
            "100% done\r\n",
            "a long line\rshort\n",
            "xxxx\r\u{1b}[Kok\n",
        ]);
        assert_eq!(text(&lines), ["100% done", "shortg line", "ok"]);
    }

    #[test]
    fn sequences_and_pen_carry_across_pieces() {
        // The escape is split inside its parameters, and the colour outlives the piece.
        let lines = render(&["\u{1b}[3", "1mred\n", "still red\u{1b}[", "0m plain"]);
        assert_eq!(text(&lines), ["red", "still red plain"]);
        assert_eq!(lines[1][0].style.fg, Color::Indexed(1));
        assert_eq!(lines[1][1].style, Style::default());

        let mut first = Terminal::default();
        first.feed("\u{1b}[32mgreen page\n", false);
        let mut second = Terminal::resume(&first.carry());
        second.feed("next page\n", false);
        assert_eq!(second.lines()[0][0].style.fg, Color::Indexed(2));
    }

    #[test]
    fn a_sequence_cut_by_a_page_edge_is_still_one_sequence() {
        for (end, start) in [
            ("a \u{1b}[3", "1mred\n"),
            ("a \u{1b}", "[31mred\n"),
            ("a \u{1b}]0;ti", "tle\u{7}\u{1b}[31mred\n"),
            ("a \u{1b}[38;5", ";1mred\n"),
        ] {
            let mut first = Terminal::default();
            first.feed(end, false);
            let mut second = Terminal::resume(&first.carry());
            second.feed(start, false);
            let lines = second.lines();
            assert_eq!(text(&lines), ["red"], "{end:?} | {start:?}");
            assert_eq!(
                lines[0][0].style.fg,
                Color::Indexed(1),
                "{end:?} | {start:?}"
            );
        }
        // A page ending with a finished sequence leaves nothing unfinished.
        let mut done = Terminal::default();
        done.feed("x\u{1b}[0m", false);
        assert_eq!(done.carry(), Carry::default());
        // Pieces inside one page: the sequence goes on across three of them.
        let lines = render(&["\u{1b}[", "3", "1mred\n"]);
        assert_eq!(lines[0][0].style.fg, Color::Indexed(1));
    }

    #[test]
    fn cursor_and_screen_sequences_are_never_text() {
        let lines = render(&[
            "\u{1b}[2J\u{1b}[H\u{1b}[?25lone\u{1b}[5Atwo\u{1b}]8;;https://x\u{1b}\\link\u{1b}]8;;\u{1b}\\\u{1b}P1$r\u{1b}\\\n",
            "a\tb\u{8}c\n",
        ]);
        assert_eq!(text(&lines), ["onetwolink", "a       c"]);
    }

    #[test]
    fn cursor_moves_are_bounded() {
        let lines = render(&["\u{1b}[65535Ca\u{1b}[65535Gb\u{1b}[65535C\u{1b}[65535Cc\n"]);
        let width = text(&lines)[0].chars().count();
        assert!(width <= MAX_CURSOR_COLUMN + 3, "{width} columns");
        assert!(text(&lines)[0].ends_with("abc") || text(&lines)[0].contains('c'));
    }

    #[test]
    fn stderr_marks_its_text_and_survives_a_reset() {
        let mut terminal = Terminal::default();
        terminal.feed("out ", false);
        terminal.feed("\u{1b}[31merr\u{1b}[0m!", true);
        let line = &terminal.lines()[0];
        assert!(!line[0].style.stderr);
        assert_eq!(line[1].style.fg, Color::Indexed(1));
        assert!(line[1].style.stderr && line[2].style.stderr);
        assert_eq!(line[2].text, "!");
    }
}
