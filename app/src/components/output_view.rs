//! A command's output, however large: a bounded window of 64 KiB pages in the DOM, fetched as the
//! reader scrolls either way; "Jump to end"; and, while the session runs, a live tail that
//! follows the end until the reader scrolls up. Text is drawn as a terminal draws it
//! ([`terminal_text`]), each page going on from where the one before left off; stderr is marked.

use std::collections::VecDeque;

use leptos::{html, prelude::*, task::spawn_local};
use loupe_protocol::{OutputPiece, terminal::Carry};

use crate::{api, components::terminal_text};

/// Page size when the server's `preview_bytes` is out of bounds.
const MIN_PAGE: u64 = 4 * 1024;
const MAX_PAGE: u64 = 1024 * 1024;
/// Pages kept in the DOM at most: a quarter of a MiB of text, a few thousand lines.
const MAX_PAGES: usize = 4;

#[derive(Clone)]
struct Page {
    offset: u64,
    length: u64,
    pieces: Vec<OutputPiece>,
    /// Where the page's text goes on from, and where the text after it does.
    carry: Carry,
    end: Carry,
}

impl Page {
    fn new(offset: u64, length: u64, pieces: Vec<OutputPiece>) -> Page {
        let end = terminal_text::read(&pieces, &Carry::default()).carry;
        Page {
            offset,
            length,
            pieces,
            carry: Carry::default(),
            end,
        }
    }
}

#[component]
pub fn OutputView(
    session: String,
    seq: u64,
    total: RwSignal<u64>,
    tail: RwSignal<Vec<OutputPiece>>,
    /// Bytes fetched per page: the server's `preview_bytes`.
    page_bytes: u64,
) -> impl IntoView {
    let page_size = page_bytes.clamp(MIN_PAGE, MAX_PAGE);
    let pages = RwSignal::new(VecDeque::<Page>::new());
    let busy = RwSignal::new(false);
    let following = RwSignal::new(false);
    let container = NodeRef::<html::Div>::new();
    let start = move || pages.with(start_of);
    let end = move || pages.with(end_of);

    // Reads `length` bytes from `offset` into the window at `place`. Live pieces may extend the
    // window while a read is out: a read that no longer fits where it was meant to go is
    // dropped (the effect below reaches for the end again while following).
    let fetch = {
        let session = session.clone();
        move |offset: u64, length: u64, place: Place| {
            if busy.get_untracked() {
                return;
            }
            busy.set(true);
            let session = session.clone();
            spawn_local(async move {
                if let Ok(window) = api::output(&session, seq, offset, length).await {
                    total.try_update(|total| *total = (*total).max(window.total));
                    let reached_end = window.offset + window.length >= window.total;
                    let page = Page::new(window.offset, window.length, window.pieces);
                    pages.try_update(|pages| match place {
                        Place::Replace => {
                            pages.clear();
                            pages.push_back(page);
                        }
                        Place::Front
                            if page.length > 0 && page.offset + page.length == start_of(pages) =>
                        {
                            pages.push_front(page);
                            if pages.len() > MAX_PAGES {
                                pages.pop_back();
                            }
                            carry_over(pages, 1);
                        }
                        Place::Back if page.length > 0 && page.offset == end_of(pages) => {
                            pages.push_back(page);
                            if pages.len() > MAX_PAGES {
                                pages.pop_front();
                            }
                            carry_over(pages, pages.len() - 1);
                        }
                        Place::Front | Place::Back => {}
                    });
                    // A first look at an output that ends in view follows it.
                    if place == Place::Replace && offset == 0 {
                        following.try_set(reached_end);
                    }
                }
                busy.try_set(false);
                // The view may be gone by now (a new run, a reload): read with try_.
                if following.try_get_untracked().unwrap_or(false)
                    && let Some(element) = container.try_get_untracked().flatten()
                {
                    element.set_scroll_top(element.scroll_height());
                }
            });
        }
    };
    fetch(0, page_size, Place::Replace);

    // Live pieces extend the window when they continue it; anything else (a gap while the page
    // was catching up) is fetched below while following.
    Effect::new(move |_| {
        let pieces = tail.get();
        if pieces.is_empty() {
            return;
        }
        tail.update_untracked(Vec::clear);
        for piece in pieces {
            let piece_end = piece.offset + piece.bytes;
            total.update(|total| *total = (*total).max(piece_end));
            pages.update(|pages| {
                let length = piece.bytes;
                match pages.back_mut() {
                    Some(page) if page.offset + page.length == piece.offset => {
                        if page.length < page_size * 2 {
                            page.length += length;
                            page.pieces.push(piece);
                            // The whole page again: an escape sequence may span pieces.
                            page.end = terminal_text::read(&page.pieces, &page.carry).carry;
                        } else {
                            pages.push_back(Page::new(piece.offset, length, vec![piece]));
                            if pages.len() > MAX_PAGES {
                                pages.pop_front();
                            }
                            carry_over(pages, pages.len() - 1);
                        }
                    }
                    None if piece.offset == 0 => pages.push_back(Page::new(0, length, vec![piece])),
                    _ => {}
                }
            });
        }
        if following.get_untracked()
            && let Some(element) = container.get_untracked()
        {
            element.set_scroll_top(element.scroll_height());
        }
    });

    // While following, the window reaches for the end whenever the output grows past it.
    Effect::new({
        let fetch = fetch.clone();
        move |_| {
            let (total_now, end_now) = (total.get(), end());
            if following.get() && end_now < total_now && !busy.get() {
                fetch(end_now, page_size, Place::Back);
            }
        }
    });

    let on_scroll = {
        let fetch = fetch.clone();
        move |_| {
            let Some(element) = container.get_untracked() else {
                return;
            };
            let (top, height, visible) = (
                element.scroll_top(),
                element.scroll_height(),
                element.client_height(),
            );
            let near_bottom = top + visible >= height - 200;
            // Following stops when the reader leaves the bottom, not on the view's own scroll
            // while the window is still catching up with the end.
            if top + visible < height - 40 {
                following.set(false);
            } else if end() >= total.get_untracked() {
                following.set(true);
            }
            if near_bottom && end() < total.get_untracked() {
                fetch(end(), page_size, Place::Back);
            } else if top < 200 && start() > 0 {
                let length = start().min(page_size);
                fetch(start() - length, length, Place::Front);
            }
        }
    };
    let jump_to_end = {
        let fetch = fetch.clone();
        move |_| {
            following.set(true);
            fetch(
                total.get_untracked().saturating_sub(page_size),
                page_size,
                Place::Replace,
            );
        }
    };

    view! {
        <div class="output-bar">
            <span class="muted" data-test="output-window">
                {move || format!("bytes {}–{} of {}", start(), end(), total.get())}
            </span>
            <button class="button small" data-test="jump-to-end" on:click=jump_to_end>"Jump to end"</button>
            <Show when=move || following.get()><span class="badge running">"following"</span></Show>
        </div>
        <div class="output" node_ref=container on:scroll=on_scroll data-test="output" tabindex="0" aria-label="Output">
            <For each=move || pages.get() key=|page| (page.offset, page.length, page.carry.clone()) let:page>
                <pre class="output-page" data-offset=page.offset>
                    {terminal_text::lines_view(terminal_text::read(&page.pieces, &page.carry))}
                </pre>
            </For>
        </div>
    }
}

/// Where a read goes: instead of the window (a first look, "Jump to end"), or before or after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Replace,
    Front,
    Back,
}

fn start_of(pages: &VecDeque<Page>) -> u64 {
    pages.front().map_or(0, |page| page.offset)
}

fn end_of(pages: &VecDeque<Page>) -> u64 {
    pages.back().map_or(0, |page| page.offset + page.length)
}

/// Each page goes on from where the page before it left off (its colours, and an escape
/// sequence the edge between them cut); from `from` on, pages are read again until one already
/// starts where it should (each page's `end` is always read from its own `carry`, so the pages
/// after it are right too). The first page kept has nothing before it.
fn carry_over(pages: &mut VecDeque<Page>, from: usize) {
    for index in from.max(1)..pages.len() {
        let carry = pages[index - 1].end.clone();
        if pages[index].carry == carry {
            break;
        }
        pages[index].end = terminal_text::read(&pages[index].pieces, &carry).carry;
        pages[index].carry = carry;
    }
}
