//! Playing a terminal session back: where drawing a moment of it starts (the keyframe before
//! that moment, so only the bytes after the keyframe are read), and finding text across the
//! whole recording (the lines the terminal showed, see [`Transcriber`]).

use std::collections::{HashMap, VecDeque};

use loupe_protocol::{ScreenHit, ScreenHits, ScreenStart, TerminalResize};

use super::cast::{self, Moment, TerminalEvents, Timeline};
use crate::{
    error::ApiError,
    store::{SessionRecord, Store, now_us},
    terminal::screen::{Size, Transcriber},
};

/// Hits a search returns at most.
pub const MAX_HITS: usize = 200;

fn ensure_terminal(session: &SessionRecord) -> Result<(), ApiError> {
    if cast::is_terminal(session) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "id",
            "this session is not a terminal session: read its events and output instead",
        ))
    }
}

fn millis_since(session: &SessionRecord, at_us: i64) -> u64 {
    u64::try_from((at_us - session.started_at_us) / 1000).unwrap_or(0)
}

/// Lines holding the text searched for, as the replay completes them, each with the moment it
/// first stood whole on the screen (the transcript only completes a line when it scrolls off or
/// the recording ends, which may be much later).
struct Found {
    needle: String,
    hits: Vec<ScreenHit>,
    more: bool,
    /// Matching lines on the screen now, with when each first showed as it reads now.
    shown: HashMap<String, VecDeque<u64>>,
}

impl Found {
    /// Notes the matching lines `screen` shows at `at_ms`.
    fn look(&mut self, screen: &[String], at_ms: u64) {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for line in screen {
            if line.to_lowercase().contains(&self.needle) {
                *counts.entry(line.as_str()).or_default() += 1;
            }
        }
        // Lines no longer on the screen (redrawn over, not scrolled off) are forgotten, so a
        // progress line redrawn a million times costs nothing.
        self.shown.retain(|line, times| {
            times.truncate(counts.get(line.as_str()).copied().unwrap_or(0));
            !times.is_empty()
        });
        for (line, count) in counts {
            let times = self.shown.entry(line.to_owned()).or_default();
            while times.len() < count {
                times.push_back(at_ms);
            }
        }
    }

    fn take(&mut self, lines: Vec<String>, at_ms: u64) {
        for line in lines {
            if !line.to_lowercase().contains(&self.needle) {
                continue;
            }
            if self.hits.len() == MAX_HITS {
                self.more = true;
                return;
            }
            let shown = self.shown.get_mut(&line).and_then(VecDeque::pop_front);
            self.hits.push(ScreenHit {
                at_ms: shown.unwrap_or(at_ms).min(at_ms),
                line,
            });
        }
    }
}

/// Where playback of `session` at `at_ms` (the latest moment when none) starts.
///
/// Errors: 400 (`id`) for a session that is not a terminal's.
pub async fn screen_start(
    store: &Store,
    session: &SessionRecord,
    at_ms: Option<u64>,
) -> Result<ScreenStart, ApiError> {
    ensure_terminal(session)?;
    let TerminalEvents { output, sizes, .. } = TerminalEvents::read(store, &session.id).await?;
    let end_us = session.ended_at_us.unwrap_or_else(now_us);
    let at_us = match at_ms {
        Some(ms) => session
            .started_at_us
            .saturating_add(i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)),
        None => i64::MAX,
    };
    let keyframe = match output {
        Some((seq, total)) => {
            store
                .keyframe_before(&session.id, seq as i64, at_us, total as i64)
                .await?
        }
        None => None,
    };
    let first = sizes.first().map_or(Size::DEFAULT, |(_, size)| *size);
    let resizes = sizes
        .iter()
        .skip(1)
        .map(|(at_us, size)| TerminalResize {
            at_ms: millis_since(session, *at_us),
            cols: size.cols,
            rows: size.rows,
        })
        .collect();
    let (screen, cols, rows, offset, keyframe_ms) = match keyframe {
        Some(keyframe) => (
            keyframe.screen,
            u16::try_from(keyframe.cols).unwrap_or(first.cols),
            u16::try_from(keyframe.rows).unwrap_or(first.rows),
            keyframe.byte_offset as u64,
            millis_since(session, keyframe.at_us),
        ),
        None => (String::new(), first.cols, first.rows, 0, 0),
    };
    Ok(ScreenStart {
        seq: output.map(|(seq, _)| seq),
        screen,
        cols,
        rows,
        offset,
        at_ms: keyframe_ms,
        total: output.map_or(0, |(_, total)| total),
        duration_ms: millis_since(session, end_us),
        resizes,
    })
}

/// The lines of `session`'s screen that hold `query` (case-insensitive), each with the moment
/// it was complete. Replays the whole recording (a screen of memory at a time).
///
/// Errors: 400 (`id`) for a session that is not a terminal's, 400 (`q`) for an empty or
/// over-long query.
pub async fn search(
    store: &Store,
    session: &SessionRecord,
    query: &str,
) -> Result<ScreenHits, ApiError> {
    ensure_terminal(session)?;
    let needle = query.trim().to_lowercase();
    if needle.is_empty() || needle.chars().count() > 200 {
        return Err(ApiError::bad_request("q", "q must be 1 to 200 characters"));
    }
    let mut timeline = Timeline::open(store.clone(), &session.id, false).await?;
    let mut transcriber = Transcriber::new(timeline.first_size);
    let mut found = Found {
        needle,
        hits: Vec::new(),
        more: false,
        shown: HashMap::new(),
    };
    let mut last_us = session.started_at_us;
    while let Some((at_us, moment)) = timeline.next().await? {
        last_us = at_us;
        let lines = match moment {
            Moment::Bytes { data, .. } => transcriber.feed(&data),
            Moment::Resize(size) => transcriber.resize(size),
        };
        let at_ms = millis_since(session, at_us);
        // Lines that scrolled off take the times noted while they were on the screen; then
        // the screen as it is now is noted.
        found.take(lines, at_ms);
        found.look(&transcriber.screen(), at_ms);
        if found.more {
            break;
        }
    }
    if !found.more {
        found.take(transcriber.finish(), millis_since(session, last_us));
    }
    let Found { hits, more, .. } = found;
    Ok(ScreenHits { hits, more })
}
