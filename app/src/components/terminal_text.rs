//! Output drawn the way a terminal draws it for a log: colours and attributes as SGR set them,
//! no escape sequence shown as text, progress lines at their last state, stderr marked. The
//! reading itself is [`loupe_protocol::terminal`]; this draws its lines as spans.

use leptos::prelude::*;
use loupe_protocol::{
    OutputPiece, Stream,
    terminal::{Carry, Line, Terminal},
};

/// Pieces read in order, going on from where the text before them left off.
pub struct Reading {
    pub lines: Vec<Line>,
    /// The last line has no line feed yet.
    pub mid_line: bool,
    /// Where the text after the last piece goes on from.
    pub carry: Carry,
}

pub fn read<'a>(pieces: impl IntoIterator<Item = &'a OutputPiece>, carry: &Carry) -> Reading {
    let mut terminal = Terminal::resume(carry);
    for piece in pieces {
        terminal.feed(&piece.text, piece.stream == Stream::Stderr);
    }
    Reading {
        lines: terminal.lines(),
        mid_line: terminal.is_mid_line(),
        carry: terminal.carry(),
    }
}

/// The lines as spans, each finished line followed by its line feed (for `<pre>`).
pub fn lines_view(reading: Reading) -> impl IntoView {
    let count = reading.lines.len();
    reading
        .lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            let spans = line
                .into_iter()
                .map(|span| {
                    let style = span.style;
                    let classes = [
                        (style.bold, "ansi-bold"),
                        (style.dim, "ansi-dim"),
                        (style.italic, "ansi-italic"),
                        (style.underline, "ansi-underline"),
                        (style.stderr, "stderr"),
                    ]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, class)| *class)
                    .collect::<Vec<_>>()
                    .join(" ");
                    let (color, background) = style.paint();
                    let css = [("color", color), ("background-color", background)]
                        .into_iter()
                        .filter_map(|(property, value)| value.map(|value| format!("{property}:{value}")))
                        .collect::<Vec<_>>()
                        .join(";");
                    view! {
                        <span class=(!classes.is_empty()).then_some(classes) style=(!css.is_empty()).then_some(css)>{span.text}</span>
                    }
                })
                .collect_view();
            let feed = (index + 1 < count || !reading.mid_line).then_some("\n");
            view! { {spans}{feed} }
        })
        .collect_view()
}
