//! A terminal session played back in xterm.js: play and pause, speed, skipping idle time, a
//! seek bar, jumping to a time, keyboard shortcuts (space or k: play/pause, ←/→: 5 seconds,
//! Home/End), and search across the whole recording with each hit one click away.
//!
//! Seeking asks the server where the moment starts (`GET /api/sessions/{id}/screen?at_ms=`:
//! the keyframe before it), draws that keyframe, and replays only the output after it. A
//! running session opens at its latest screen and then follows it live on the tab's live
//! channel, read-only.

use std::{cell::RefCell, collections::VecDeque, rc::Rc};

use leptos::{html, prelude::*, task::spawn_local};
use loupe_protocol::{
    EventKind, ScreenHit, ServerMessage, Session, Stream, TerminalResize, Timestamp,
};

use crate::{
    api,
    live::{LiveChannel, Watch},
    xterm,
};

/// Bytes of output fetched at once while playing.
const WINDOW_BYTES: u64 = 256 * 1024;
/// How often the player advances while playing, in milliseconds.
const TICK_MS: u64 = 40;
/// With "skip idle" on, no pause in the recording lasts longer than this, in milliseconds.
const MAX_IDLE_MS: u64 = 1000;
/// What the arrow keys move by, in milliseconds.
const STEP_MS: u64 = 5000;

/// What the player holds between ticks.
struct Player {
    term: xterm::Term,
    id: String,
    started_us: i64,
    seq: Option<u64>,
    total: u64,
    /// Output fetched beyond the position, in order: (milliseconds from the start, text).
    queue: VecDeque<(u64, String)>,
    next_offset: u64,
    resizes: Vec<TerminalResize>,
    next_resize: usize,
    /// Bumped by every seek, so that what a superseded seek fetched is dropped.
    generation: u64,
    fetching: bool,
}

impl Player {
    fn millis(&self, at: Timestamp) -> u64 {
        u64::try_from((at.as_micros() - self.started_us) / 1000).unwrap_or(0)
    }

    /// Writes what happened up to `until_ms`: queued output and resizes, in time order.
    fn play_until(&mut self, until_ms: u64) {
        while let Some((at_ms, _)) = self.queue.front() {
            if *at_ms > until_ms {
                break;
            }
            let (at_ms, text) = self.queue.pop_front().expect("a front piece");
            self.resize_until(at_ms);
            self.term.xterm.put(&text);
        }
        self.resize_until(until_ms);
    }

    fn resize_until(&mut self, until_ms: u64) {
        while let Some(resize) = self.resizes.get(self.next_resize) {
            if resize.at_ms > until_ms {
                break;
            }
            self.term.xterm.resize(resize.cols, resize.rows);
            self.next_resize += 1;
        }
    }

    fn exhausted(&self) -> bool {
        self.seq.is_none() || self.next_offset >= self.total
    }
}

type Shared = Rc<RefCell<Player>>;

/// Fetches the next window of output into the queue; false when there is nothing more.
async fn fetch_more(player: &Shared) -> bool {
    let (id, seq, offset, generation) = {
        let mut state = player.borrow_mut();
        if state.fetching || state.exhausted() {
            return false;
        }
        state.fetching = true;
        (
            state.id.clone(),
            state.seq.unwrap_or(0),
            state.next_offset,
            state.generation,
        )
    };
    let window = api::output(&id, seq, offset, WINDOW_BYTES).await;
    let mut state = player.borrow_mut();
    state.fetching = false;
    if state.generation != generation {
        return false;
    }
    match window {
        Ok(window) => {
            for piece in window.pieces {
                let at_ms = state.millis(piece.at);
                state.queue.push_back((at_ms, piece.text));
            }
            state.total = state.total.max(window.total);
            if window.length == 0 {
                state.next_offset = state.total;
            } else {
                state.next_offset = window.offset + window.length;
            }
            true
        }
        Err(_) => false,
    }
}

/// Draws the moment `at_ms` (the latest when none): the keyframe before it, then the output
/// after it up to the moment. Answers the moment drawn and the recording's length.
async fn seek(player: &Shared, at_ms: Option<u64>) -> Result<(u64, u64), String> {
    let (id, generation) = {
        let mut state = player.borrow_mut();
        state.generation += 1;
        state.fetching = false;
        (state.id.clone(), state.generation)
    };
    let start = api::screen(&id, at_ms)
        .await
        .map_err(|error| error.to_string())?;
    {
        let mut state = player.borrow_mut();
        if state.generation != generation {
            return Err("superseded".into());
        }
        state.term.xterm.reset();
        state.term.xterm.resize(start.cols, start.rows);
        state.term.xterm.put(&start.screen);
        state.seq = start.seq;
        state.total = start.total;
        state.next_offset = start.offset;
        state.queue.clear();
        state.next_resize = start
            .resizes
            .iter()
            .position(|resize| resize.at_ms > start.at_ms)
            .unwrap_or(start.resizes.len());
        state.resizes = start.resizes;
    }
    let target = at_ms
        .unwrap_or(u64::MAX)
        .min(start.duration_ms.max(start.at_ms));
    loop {
        let done = {
            let mut state = player.borrow_mut();
            if state.generation != generation {
                return Err("superseded".into());
            }
            state.play_until(target);
            !state.queue.is_empty() || state.exhausted()
        };
        if done || !fetch_more(player).await {
            break;
        }
    }
    Ok((target, start.duration_ms))
}

fn clock(ms: u64) -> String {
    let seconds = ms / 1000;
    if seconds >= 3600 {
        format!(
            "{}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    } else {
        format!("{:02}:{:02}", seconds / 60, seconds % 60)
    }
}

/// `mm:ss`, `h:mm:ss` or a number of seconds, as milliseconds.
fn parse_clock(text: &str) -> Option<u64> {
    let mut total = 0u64;
    for part in text.trim().split(':') {
        total = total * 60 + part.trim().parse::<u64>().ok()?;
    }
    Some(total * 1000)
}

#[component]
pub fn TerminalPlayer(id: String, session: RwSignal<Option<Session>>) -> impl IntoView {
    let host = NodeRef::<html::Div>::new();
    let player = StoredValue::new_local(None::<Shared>);
    let live = StoredValue::new_local(None::<Watch>);
    let ticker = StoredValue::new_local(None::<IntervalHandle>);
    let position = RwSignal::new(0u64);
    let duration = RwSignal::new(0u64);
    let playing = RwSignal::new(false);
    let following = RwSignal::new(false);
    let speed = RwSignal::new(1.0f64);
    let skip_idle = RwSignal::new(true);
    let problem = RwSignal::new(None::<String>);
    let query = RwSignal::new(String::new());
    let hits = RwSignal::new(None::<(Vec<ScreenHit>, bool)>);
    let jump = RwSignal::new(String::new());
    // Read here, in the component's owner: the tasks below run outside it.
    let channel = LiveChannel::get();
    on_cleanup(move || {
        live.set_value(None);
        if let Some(handle) = ticker.get_value() {
            handle.clear();
        }
        player.set_value(None);
    });

    let go_to = move |at_ms: Option<u64>| {
        let Some(shared) = player.get_value() else {
            return;
        };
        spawn_local(async move {
            match seek(&shared, at_ms).await {
                Ok((at, length)) => {
                    position.try_set(at);
                    duration.try_set(length);
                }
                Err(reason) if reason == "superseded" => {}
                Err(reason) => {
                    problem.try_set(Some(reason));
                }
            }
        });
    };

    let tick = move || {
        if !playing.get_untracked() {
            return;
        }
        let Some(shared) = player.get_value() else {
            return;
        };
        let mut now = position.get_untracked() + (TICK_MS as f64 * speed.get_untracked()) as u64;
        let length = duration.get_untracked();
        let (ended, low) = {
            let mut state = shared.borrow_mut();
            if skip_idle.get_untracked()
                && let Some((next, _)) = state.queue.front()
                && *next > now + MAX_IDLE_MS
            {
                now = next - MAX_IDLE_MS / 4;
            }
            state.play_until(now);
            let ended = now >= length && state.queue.is_empty() && state.exhausted();
            (ended, state.queue.len() < 256)
        };
        if low {
            spawn_local(async move {
                fetch_more(&shared).await;
            });
        }
        if ended {
            playing.set(false);
            now = length;
        }
        position.set(now.min(length));
    };

    // Open the terminal once the element exists and the session is known.
    Effect::new(move |opened: Option<bool>| {
        if opened == Some(true) {
            return true;
        }
        let (Some(element), Some(current)) = (host.get(), session.get()) else {
            return false;
        };
        let id = id.clone();
        spawn_local(async move {
            if let Err(reason) = xterm::load().await {
                problem.try_set(Some(reason));
                return;
            }
            let term = match xterm::Term::open(&element, None) {
                Ok(term) => term,
                Err(reason) => {
                    problem.try_set(Some(reason));
                    return;
                }
            };
            let shared: Shared = Rc::new(RefCell::new(Player {
                term,
                id: id.clone(),
                started_us: current.started_at.as_micros(),
                seq: None,
                total: 0,
                queue: VecDeque::new(),
                next_offset: 0,
                resizes: Vec::new(),
                next_resize: 0,
                generation: 0,
                fetching: false,
            }));
            if player.try_set_value(Some(shared.clone())).is_some() {
                return;
            }
            // The latest screen first, for a running session as for an ended one.
            let drawn = seek(&shared, None).await;
            // A running session: everything up to now, then live from there.
            if !current.status.is_final() {
                loop {
                    let more = {
                        let mut state = shared.borrow_mut();
                        state.play_until(u64::MAX);
                        !state.exhausted()
                    };
                    if !more || !fetch_more(&shared).await {
                        break;
                    }
                }
                follow(&shared, &id, channel, live, following, session);
            }
            match drawn {
                Ok((at, length)) => {
                    position.try_set(at);
                    duration.try_set(length);
                }
                Err(reason) => {
                    problem.try_set(Some(reason));
                }
            }
            if let Ok(handle) =
                set_interval_with_handle(tick, std::time::Duration::from_millis(TICK_MS))
            {
                ticker.set_value(Some(handle));
            }
        });
        true
    });

    // When a followed session ends, the player switches to playback of the whole recording.
    Effect::new(move |_| {
        let ended = session.with(|current| {
            current
                .as_ref()
                .is_some_and(|current| current.status.is_final())
        });
        if ended && following.get_untracked() {
            following.set(false);
            live.set_value(None);
            go_to(None);
        }
    });

    let toggle = move || {
        if following.get_untracked() {
            return;
        }
        if !playing.get_untracked() && position.get_untracked() >= duration.get_untracked() {
            // Played to the end: start again.
            go_to(Some(0));
            position.set(0);
        }
        playing.update(|playing| *playing = !*playing);
    };
    let step = move |forward: bool| {
        let now = position.get_untracked();
        let to = if forward {
            (now + STEP_MS).min(duration.get_untracked())
        } else {
            now.saturating_sub(STEP_MS)
        };
        go_to(Some(to));
    };
    let on_key = move |event: leptos::ev::KeyboardEvent| {
        let target_is_field = event
            .target()
            .and_then(|target| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(target).ok())
            .is_some_and(|element| {
                matches!(element.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA")
            });
        if target_is_field || following.get_untracked() {
            return;
        }
        match event.key().as_str() {
            " " | "k" => toggle(),
            "ArrowLeft" => step(false),
            "ArrowRight" => step(true),
            "Home" => go_to(Some(0)),
            "End" => go_to(None),
            _ => return,
        }
        event.prevent_default();
    };
    let search = move || {
        let text = query.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        let id = player
            .get_value()
            .map(|shared| shared.borrow().id.clone())
            .unwrap_or_default();
        spawn_local(async move {
            match api::screen_search(&id, &text).await {
                Ok(found) => {
                    hits.try_set(Some((found.hits, found.more)));
                }
                Err(failure) => {
                    problem.try_set(Some(failure.to_string()));
                }
            }
        });
    };

    view! {
        <section class="player card" aria-label="Terminal playback" tabindex="0" on:keydown=on_key data-test="player">
            <div class="player-controls">
                <Show when=move || !following.get()
                    fallback=|| view! { <span class="badge live-badge" data-test="player-live">"Live: following the terminal"</span> }>
                    <button class="button small" data-test="player-play" on:click=move |_| toggle()
                        aria-label=move || if playing.get() { "Pause" } else { "Play" }>
                        {move || if playing.get() { "Pause" } else { "Play" }}
                    </button>
                    <input type="range" class="grow" min="0" data-test="player-seek" aria-label="Position"
                        prop:max=move || duration.get().to_string()
                        prop:value=move || position.get().to_string()
                        on:change=move |event| {
                            if let Ok(at) = event_target_value(&event).parse::<u64>() {
                                go_to(Some(at));
                            }
                        }/>
                    <span class="mono" data-test="player-time">{move || format!("{} / {}", clock(position.get()), clock(duration.get()))}</span>
                    <label>"Speed "
                        <select data-test="player-speed" on:change=move |event| speed.set(event_target_value(&event).parse().unwrap_or(1.0))>
                            {[0.5, 1.0, 2.0, 4.0, 8.0].map(|option| view! { <option value=option.to_string() selected=option == 1.0>{format!("{option}×")}</option> })}
                        </select>
                    </label>
                    <label><input type="checkbox" prop:checked=move || skip_idle.get() on:change=move |event| skip_idle.set(event_target_checked(&event))/>" Skip idle"</label>
                    <form class="inline" on:submit=move |event| {
                        event.prevent_default();
                        match parse_clock(&jump.get_untracked()) {
                            Some(at) => go_to(Some(at.min(duration.get_untracked()))),
                            None => problem.set(Some("Jump to: a time as mm:ss".into())),
                        }
                    }>
                        <input class="time-input" data-test="player-jump" placeholder="mm:ss" aria-label="Jump to a time" bind:value=jump/>
                    </form>
                </Show>
            </div>
            <div class="terminal-screen player-screen" node_ref=host data-test="player-screen"></div>
            <form class="player-search" on:submit=move |event| { event.prevent_default(); search(); }>
                <input type="search" data-test="player-search" placeholder="Search the recording" aria-label="Search the recording" bind:value=query/>
                <button class="button small" type="submit" data-test="player-search-submit">"Find"</button>
            </form>
            {move || problem.get().map(|text| view! { <p class="error-text" role="alert" data-test="player-error">{text}</p> })}
            {move || hits.get().map(|(found, more)| if found.is_empty() {
                view! { <p class="muted" data-test="player-no-hits">"Not found in this recording."</p> }.into_any()
            } else {
                view! {
                    <ol class="player-hits" data-test="player-hits">
                        {found.into_iter().map(|hit| {
                            let at = hit.at_ms;
                            view! {
                                <li><button class="link" data-test="player-hit" on:click=move |_| { playing.set(false); go_to(Some(at)); }>
                                    <span class="mono muted">{clock(at)}</span>" "<span class="mono">{hit.line}</span>
                                </button></li>
                            }
                        }).collect_view()}
                        {more.then(|| view! { <li class="muted">"More lines match; search for something longer."</li> })}
                    </ol>
                }.into_any()
            })}
        </section>
    }
}

/// Follows a running session live from where the player drew it.
fn follow(
    shared: &Shared,
    id: &str,
    channel: LiveChannel,
    live: StoredValue<Option<Watch>, LocalStorage>,
    following: RwSignal<bool>,
    session: RwSignal<Option<Session>>,
) {
    let (after, offset) = {
        let state = shared.borrow();
        (state.seq.unwrap_or(0), state.seq.map_or(0, |_| state.total))
    };
    let player = shared.clone();
    let watch = channel.watch_session_from(id, after, offset, move |message| match message {
        ServerMessage::Output { seq, piece, .. } => {
            let mut state = player.borrow_mut();
            if state.seq.is_none() && piece.stream == Stream::Stdout {
                state.seq = Some(seq);
            }
            if state.seq == Some(seq) {
                state.total = state.total.max(piece.offset + piece.bytes);
                state.next_offset = state.total;
                state.term.xterm.put(&piece.text);
            }
        }
        ServerMessage::Event { event, .. } => {
            let mut state = player.borrow_mut();
            match event.kind {
                EventKind::Resize => {
                    let size = event.text.as_deref().and_then(|text| text.split_once('x'));
                    if let Some((cols, rows)) = size
                        && let (Ok(cols), Ok(rows)) = (cols.parse(), rows.parse())
                    {
                        state.term.xterm.resize(cols, rows);
                    }
                }
                EventKind::Output
                    if state.seq.is_none() && event.summary == Stream::Stdout.as_str() =>
                {
                    state.seq = Some(event.seq);
                }
                _ => {}
            }
        }
        ServerMessage::Session {
            session: changed, ..
        } => {
            session.try_set(Some(changed));
        }
        _ => {}
    });
    live.try_set_value(Some(watch));
    following.try_set(true);
}
