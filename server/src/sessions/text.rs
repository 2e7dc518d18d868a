//! Text views of stored output bytes that never cut a UTF-8 character in two. Programs write
//! bytes, and reads (and so chunks) end wherever the pipe had data: a character can start in one
//! chunk and end in the next, and a window asked for by byte offset can start or end inside one.
//! Decoding each piece on its own would show U+FFFD twice where the bytes are perfectly good.
//!
//! The rules, shared by output windows, live pieces and relayed pieces:
//! - a window's start moves forward past the rest of a character begun before it, and its end
//!   moves forward to finish a character begun inside it, so consecutive windows (each asked for
//!   at the previous one's end) cover every byte once;
//! - a character split by a chunk edge goes whole with the piece where it starts, when the next
//!   piece is of the same stream (stdout and stderr interleaved cannot share a character);
//! - bytes that are not UTF-8 stay U+FFFD: the stored bytes are always exactly what the program
//!   wrote, and the `txt` download has them.
//!
//! UTF-8's sequence lengths are from RFC 3629 §4.

use loupe_protocol::{OutputPiece, Stream, Timestamp};

use crate::store::{ChunkRecord, Store, StoreResult};

/// Bytes read either side of a window so its edges can move to character boundaries.
const LOOKAHEAD: u64 = 3;

/// Bytes `from..to` of output event `seq` as stored, read with the few bytes either side that
/// [`window`] needs, and cut as it says.
pub async fn read(
    store: &Store,
    session_id: &str,
    seq: u64,
    from: u64,
    to: u64,
) -> StoreResult<(Vec<(OutputPiece, u64)>, u64, u64)> {
    let chunks = store
        .output_chunks(
            session_id,
            seq as i64,
            from.saturating_sub(LOOKAHEAD) as i64,
            to.saturating_add(LOOKAHEAD) as i64,
        )
        .await?;
    Ok(window(&chunks, from, to))
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// How long the sequence `lead` starts is (1 for ASCII and for bytes that start none).
fn sequence_length(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// How many bytes at the end of `bytes` begin a character that continues past them (0 to 3).
pub fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if !is_continuation(byte) {
            return if sequence_length(byte) > back {
                back
            } else {
                0
            };
        }
    }
    0
}

/// How many bytes at the start of `bytes` continue a character begun before them (0 to 3).
pub fn continuation_head(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .take_while(|byte| is_continuation(**byte))
        .count()
}

/// One stretch of an event's bytes: where it starts, when it arrived, on which stream.
struct Span {
    offset: u64,
    at_us: i64,
    stream: Stream,
    bytes: Vec<u8>,
}

/// The pieces for bytes `from..to` of one output event, from its `chunks` (in offset order,
/// covering `from - LOOKAHEAD..to + LOOKAHEAD` where the event has those bytes), cut at
/// character boundaries as the module says. Returns the pieces with their byte lengths, and the
/// bytes `start..end` they cover.
pub fn window(chunks: &[ChunkRecord], from: u64, to: u64) -> (Vec<(OutputPiece, u64)>, u64, u64) {
    let (low, high) = (from.saturating_sub(LOOKAHEAD), to.saturating_add(LOOKAHEAD));
    let spans: Vec<Span> = chunks
        .iter()
        .filter_map(|chunk| {
            let offset = chunk.byte_offset as u64;
            let begin = low.saturating_sub(offset) as usize;
            let end = (high.saturating_sub(offset) as usize).min(chunk.data.len());
            (begin < end).then(|| Span {
                offset: offset + begin as u64,
                at_us: chunk.at_us,
                stream: chunk.stream,
                bytes: chunk.data[begin..end].to_vec(),
            })
        })
        .collect();
    let Some(first) = spans.first() else {
        return (Vec::new(), from, from);
    };
    let base = first.offset;
    let all: Vec<u8> = spans.iter().flat_map(|span| span.bytes.clone()).collect();
    let at = |offset: u64| (offset.saturating_sub(base) as usize).min(all.len());
    // Skip the rest of a character begun before `from` (the window before this one finished it).
    let begun = incomplete_tail(&all[..at(from)]);
    let start = if begun == 0 {
        from
    } else {
        let lead = all[at(from) - begun];
        let rest = (sequence_length(lead) - begun).min(continuation_head(&all[at(from)..]));
        from + rest as u64
    };
    // Finish a character begun before `to`.
    let unfinished = incomplete_tail(&all[at(start)..at(to)]);
    let end = if unfinished == 0 {
        base + at(to) as u64
    } else {
        let lead_at = at(to) - unfinished;
        let rest =
            (sequence_length(all[lead_at]) - unfinished).min(continuation_head(&all[at(to)..]));
        base + (at(to) + rest) as u64
    };
    let end = end.max(start);
    let clipped: Vec<Span> = spans
        .into_iter()
        .filter_map(|span| {
            let span_end = span.offset + span.bytes.len() as u64;
            let begin = start.max(span.offset);
            let finish = end.min(span_end);
            (begin < finish).then(|| Span {
                bytes: span.bytes[(begin - span.offset) as usize..(finish - span.offset) as usize]
                    .to_vec(),
                offset: begin,
                ..span
            })
        })
        .collect();
    (pieces(clipped), start, end)
}

/// Moves each character split by span edges into the span where it starts (it may span several
/// when chunks are tiny), then decodes.
fn pieces(mut spans: Vec<Span>) -> Vec<(OutputPiece, u64)> {
    for index in 0..spans.len() {
        let mut next = index + 1;
        while next < spans.len() && spans[next].stream == spans[index].stream {
            let tail = incomplete_tail(&spans[index].bytes);
            if tail == 0 {
                break;
            }
            let lead = spans[index].bytes[spans[index].bytes.len() - tail];
            let missing = sequence_length(lead) - tail;
            let take = missing.min(continuation_head(&spans[next].bytes));
            if take == 0 {
                break;
            }
            let moved: Vec<u8> = spans[next].bytes.drain(..take).collect();
            spans[next].offset += take as u64;
            spans[index].bytes.extend(moved);
            if !spans[next].bytes.is_empty() {
                break;
            }
            next += 1;
        }
    }
    spans
        .into_iter()
        .filter(|span| !span.bytes.is_empty())
        .map(|span| {
            let length = span.bytes.len() as u64;
            let piece = OutputPiece {
                offset: span.offset,
                at: Timestamp::from_micros(span.at_us),
                stream: span.stream,
                text: String::from_utf8_lossy(&span.bytes).into_owned(),
                bytes: length,
            };
            (piece, length)
        })
        .collect()
}

/// Live pieces of one output event as the recorder commits its chunks: an incomplete character
/// at a chunk's end is held back and sent with the next chunk, so no live piece shows U+FFFD for
/// good bytes.
#[derive(Debug, Default)]
pub struct LiveText {
    /// The offset and bytes of a character begun but not finished.
    held: Option<(u64, Vec<u8>)>,
}

impl LiveText {
    /// The piece to send for a committed chunk, and its byte length; none while everything is
    /// held back. `with_text` is false when nobody on this node watches (offsets still count).
    pub fn piece(
        &mut self,
        offset: u64,
        at_us: i64,
        stream: Stream,
        data: &[u8],
        with_text: bool,
    ) -> Option<(OutputPiece, u64)> {
        let (start, mut bytes) = match self.held.take() {
            Some((held_at, held)) if held_at + held.len() as u64 == offset => (held_at, held),
            _ => (offset, Vec::new()),
        };
        bytes.extend_from_slice(data);
        let tail = incomplete_tail(&bytes);
        if tail > 0 {
            let kept = bytes.split_off(bytes.len() - tail);
            self.held = Some((start + bytes.len() as u64, kept));
        }
        if bytes.is_empty() {
            return None;
        }
        let length = bytes.len() as u64;
        let text = if with_text {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            String::new()
        };
        let piece = OutputPiece {
            offset: start,
            at: Timestamp::from_micros(at_us),
            stream,
            text,
            bytes: length,
        };
        Some((piece, length))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn chunks(parts: &[&[u8]]) -> Vec<ChunkRecord> {
        let mut offset = 0;
        parts
            .iter()
            .map(|part| {
                let chunk = ChunkRecord {
                    byte_offset: offset,
                    at_us: 0,
                    stream: Stream::Stdout,
                    data: part.to_vec(),
                };
                offset += part.len() as i64;
                chunk
            })
            .collect()
    }

    fn text_of(pieces: &[(OutputPiece, u64)]) -> String {
        pieces
            .iter()
            .map(|(piece, _)| piece.text.as_str())
            .collect()
    }

    #[test]
    fn a_character_split_across_chunks_is_shown_whole() {
        // "a —" then " b": the em dash (e2 80 94) is split after its first byte.
        let stored = chunks(&[b"a \xe2", b"\x80\x94 b"]);
        let (pieces, start, end) = window(&stored, 0, 7);
        assert_eq!((start, end), (0, 7));
        assert_eq!(text_of(&pieces), "a — b");
        assert_eq!(pieces[0].0.text, "a —");
        assert_eq!(pieces[1].0.offset, 5);
    }

    #[test]
    fn window_edges_move_to_character_boundaries() {
        let stored = chunks(&["héllo wörld".as_bytes()]);
        // Byte 2 is inside "é" (bytes 1..3): the first window finishes it, the next skips it.
        let (first, start, end) = window(&stored, 0, 2);
        assert_eq!((text_of(&first).as_str(), start, end), ("hé", 0, 3));
        let (second, start, _) = window(&stored, 2, 6);
        assert_eq!((start, text_of(&second).as_str()), (3, "llo"));
    }

    #[test]
    fn stray_continuation_bytes_are_never_skipped() {
        let stored = chunks(&[b"a\x80\x80b"]);
        let (first, _, end) = window(&stored, 0, 1);
        let (second, start, _) = window(&stored, end, 4);
        assert_eq!((end, start), (1, 1));
        assert_eq!(text_of(&first) + &text_of(&second), "a\u{fffd}\u{fffd}b");
    }

    #[test]
    fn bytes_that_are_not_utf8_stay_replacement_characters() {
        let stored = chunks(&[b"ok \xff\xfe end"]);
        let (pieces, _, _) = window(&stored, 0, 10);
        assert_eq!(text_of(&pieces), "ok \u{fffd}\u{fffd} end");
    }

    #[test]
    fn live_pieces_hold_back_an_unfinished_character() {
        let mut live = LiveText::default();
        let (first, length) = live.piece(0, 0, Stream::Stdout, b"a \xe2", true).unwrap();
        assert_eq!((first.text.as_str(), length), ("a ", 2));
        let (second, length) = live
            .piece(3, 0, Stream::Stdout, b"\x80\x94 b", true)
            .unwrap();
        assert_eq!((second.offset, second.text.as_str(), length), (2, "— b", 5));
    }

    proptest! {
        /// Random UTF-8 text, stored in random chunks and read back in random windows (each asked
        /// for at the previous one's end): the windows cover every byte exactly once, and no
        /// text holds a replacement character the bytes do not.
        #[test]
        fn windows_cover_every_byte_once_and_never_split_a_character(
            text in "\\PC{0,60}",
            chunk_cuts in proptest::collection::vec(1usize..8, 1..20),
            window_sizes in proptest::collection::vec(1u64..9, 1..30),
        ) {
            let bytes = text.as_bytes();
            let mut parts = Vec::new();
            let mut at = 0;
            for cut in chunk_cuts.iter().cycle() {
                if at >= bytes.len() {
                    break;
                }
                let end = (at + cut).min(bytes.len());
                parts.push(&bytes[at..end]);
                at = end;
            }
            let stored = chunks(&parts);
            let total = bytes.len() as u64;
            let mut read = String::new();
            let mut offset = 0;
            for size in window_sizes.iter().cycle() {
                if offset >= total {
                    break;
                }
                let (pieces, start, end) = window(&stored, offset, (offset + size).min(total));
                prop_assert_eq!(start, offset, "each window starts where the last ended");
                prop_assert!(end > start, "progress");
                let covered: u64 = pieces.iter().map(|(_, length)| *length).sum();
                prop_assert_eq!(covered, end - start);
                read.push_str(&text_of(&pieces));
                offset = end;
            }
            let replacement = char::REPLACEMENT_CHARACTER;
            prop_assert!(!read.contains(replacement) || text.contains(replacement));
            prop_assert_eq!(read, text);
        }

        /// The same text written in random pieces comes out of the live path whole.
        #[test]
        fn live_pieces_reassemble_the_text(
            text in "\\PC{0,60}",
            cuts in proptest::collection::vec(1usize..6, 1..20),
        ) {
            let bytes = text.as_bytes();
            let mut live = LiveText::default();
            let (mut at, mut read, mut covered) = (0, String::new(), 0);
            for cut in cuts.iter().cycle() {
                if at >= bytes.len() {
                    break;
                }
                let end = (at + cut).min(bytes.len());
                if let Some((piece, length)) =
                    live.piece(at as u64, 0, Stream::Stdout, &bytes[at..end], true)
                {
                    prop_assert_eq!(piece.offset, covered);
                    covered += length;
                    read.push_str(&piece.text);
                }
                at = end;
            }
            prop_assert_eq!(read, text);
        }
    }
}
