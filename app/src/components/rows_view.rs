//! A result set, however many rows: a virtual scroll area whose height stands for every row
//! (scaled down past what browsers allow), with only the rows in view in the DOM, fetched by
//! window as the reader scrolls. Windows are bounded in bytes too: long values arrive cut, shown
//! with their whole size and a way to open or copy the whole value.
//!
//! Column widths are fixed once the first rows arrive (`table-layout: fixed`), so they do not
//! jump as other rows scroll into view; a value wider than its column is cut with an ellipsis
//! and opens whole in a panel under the grid, with a way to copy it.

use std::collections::{HashMap, HashSet};

use leptos::{html, prelude::*, task::spawn_local};
use loupe_protocol::{Cell, Column};

use crate::{
    api,
    clipboard::copy_text,
    components::session_bits::human_bytes,
    format::{count, grouped},
    settings::ServerSettings,
};

const ROW_HEIGHT: f64 = 28.0;
const VIEW_HEIGHT: f64 = 420.0;
/// Browsers cap element heights (Chromium near 33 million pixels); beyond this the scroll
/// position maps to rows proportionally.
const MAX_SCROLL_HEIGHT: f64 = 8_000_000.0;
/// Rows fetched per request when the server's `preview_rows` is out of bounds.
const MIN_BLOCK: u64 = 20;
const MAX_BLOCK: u64 = 1000;
/// Bytes of a value shown in a cell; more than a cell's width ever shows.
const CELL_BYTES: u32 = 1024;
/// The narrowest and widest a column is, in characters (`ch`); between them it fits its name and
/// its first values (see [`column_widths`]).
const MIN_COLUMN_CH: usize = 6;
const MAX_COLUMN_CH: usize = 40;
/// How many characters a NULL takes: the word `NULL`.
const NULL_CH: usize = 4;
/// A cell's padding on both sides, as in the style sheet (`.rows-table td`).
const CELL_PADDING: &str = "1.2rem";

#[component]
pub fn RowsView(
    session: String,
    seq: u64,
    columns: Vec<Column>,
    total: RwSignal<u64>,
    /// Rows fetched per request: the server's `preview_rows`.
    block_rows: u64,
) -> impl IntoView {
    let block_size = block_rows.clamp(MIN_BLOCK, MAX_BLOCK);
    let first = RwSignal::new(0u64);
    let blocks = RwSignal::new(HashMap::<u64, Vec<Vec<Cell>>>::new());
    // Blocks with a request in flight, and the cut cells by (row, column) with their whole size.
    let loading = StoredValue::new(HashSet::<u64>::new());
    let cuts = RwSignal::new(HashMap::<(u64, u32), u64>::new());
    // Fixed once the first rows arrive (see the module's comment); until then, the names alone.
    let widths = RwSignal::new(None::<Vec<usize>>);
    let expanded = RwSignal::new(None::<Expanded>);
    let container = NodeRef::<html::Div>::new();
    let visible = (VIEW_HEIGHT / ROW_HEIGHT).ceil() as u64 + 1;
    let full_height = move || (total.get() as f64 * ROW_HEIGHT).min(MAX_SCROLL_HEIGHT) + ROW_HEIGHT;

    // Fetches what the blocks of rows around `first` lack (a window may stop short at its byte
    // bound, and a running result grows), and forgets far blocks.
    let fill = {
        let session = session.clone();
        let columns = columns.clone();
        move || {
            let from = first.get_untracked() / block_size;
            let to = (first.get_untracked() + visible) / block_size;
            let rows = total.get_untracked();
            for block in from..=to {
                let start = block * block_size;
                let end = (start + block_size).min(rows);
                let have = blocks.with_untracked(|blocks| blocks.get(&block).map_or(0, Vec::len));
                if start + have as u64 >= end
                    || loading.with_value(|loading| loading.contains(&block))
                {
                    continue;
                }
                loading.update_value(|loading| {
                    loading.insert(block);
                });
                blocks.update(|blocks| {
                    blocks.entry(block).or_default();
                    blocks.retain(|known, _| known.abs_diff(block) <= 4);
                });
                cuts.update(|cuts| {
                    cuts.retain(|(row, _), _| (row / block_size).abs_diff(block) <= 4)
                });
                let session = session.clone();
                let columns = columns.clone();
                spawn_local(async move {
                    let mut offset = start + have as u64;
                    while offset < end {
                        let Ok(window) =
                            api::rows(&session, seq, offset, (end - offset) as u32, CELL_BYTES)
                                .await
                        else {
                            break;
                        };
                        if window.rows.is_empty() {
                            break;
                        }
                        offset += window.rows.len() as u64;
                        if widths.try_with_untracked(Option::is_none) == Some(true) {
                            widths.try_set(Some(column_widths(&columns, &window.rows)));
                        }
                        cuts.try_update(|cuts| {
                            cuts.extend(
                                window
                                    .cut
                                    .iter()
                                    .map(|cut| ((cut.row, cut.column), cut.bytes)),
                            )
                        });
                        let kept = blocks
                            .try_update(|blocks| {
                                blocks
                                    .get_mut(&block)
                                    .map(|rows| rows.extend(window.rows))
                                    .is_some()
                            })
                            .unwrap_or(false);
                        if !kept {
                            break;
                        }
                    }
                    // The grid may be gone by now: its stored set with it.
                    loading.try_update_value(|loading| {
                        loading.remove(&block);
                    });
                });
            }
        }
    };
    fill();
    Effect::new({
        let fill = fill.clone();
        move |_| {
            total.track();
            fill();
        }
    });

    let on_scroll = move |_| {
        let Some(element) = container.get_untracked() else {
            return;
        };
        let top = f64::from(element.scroll_top());
        let rows = total.get_untracked();
        let row = if rows as f64 * ROW_HEIGHT <= MAX_SCROLL_HEIGHT {
            (top / ROW_HEIGHT) as u64
        } else {
            // Scaled: the fraction scrolled is the fraction of rows passed.
            let span = f64::from(element.scroll_height() - element.client_height()).max(1.0);
            ((top / span) * rows.saturating_sub(visible) as f64).round() as u64
        };
        first.set(row.min(rows.saturating_sub(1)));
        fill();
    };

    let header = columns
        .iter()
        .map(|column| view! { <th title=column.type_name.clone()>{column.name.clone()}</th> })
        .collect_view();
    let width_of = {
        let columns = columns.clone();
        move |column: usize| {
            widths.with(|widths| match widths {
                Some(widths) => widths.get(column).copied().unwrap_or(MIN_COLUMN_CH),
                None => name_width(&columns[column]),
            })
        }
    };
    // Every column's width in characters, the row number's first; the table's width follows.
    let layout = Memo::new({
        let width_of = width_of.clone();
        let count = columns.len();
        move |_| {
            let number = total.get().max(1).ilog10() as usize + 1;
            std::iter::once(number)
                .chain((0..count).map(&width_of))
                .collect::<Vec<usize>>()
        }
    });
    let colgroup = move || {
        let cols = layout.with(|layout| {
            layout
                .iter()
                .map(|characters| view! { <col style=format!("width: calc({characters}ch + {CELL_PADDING})")/> })
                .collect::<Vec<_>>()
        });
        // The filler column takes what is left of the grid's width, so the columns keep theirs.
        view! { <colgroup>{cols}<col/></colgroup> }
    };
    let table_style = move || {
        layout.with(|layout| {
            let sum: usize = layout.iter().sum();
            format!(
                "width: max(100%, calc({sum}ch + {} * {CELL_PADDING}))",
                layout.len()
            )
        })
    };
    let width = columns.len();
    let settings = ServerSettings::get();
    let csv_href = format!("/api/sessions/{session}/download?format=csv&event={seq}");
    view! {
        <div class="rows-meta muted">
            <span data-test="rows-total">{move || count(total.get(), "row", "rows")}</span>
            // This result set alone, as CSV: a session may hold several.
            <Show when=move || !settings.downloads_disabled()>
                " · "<a href=csv_href.clone() download="" data-test="rows-download">"Download CSV"</a>
            </Show>
        </div>
        <div class="rows" node_ref=container on:scroll=on_scroll style=move || format!("height: {}px", fitted_height(total.get())) data-test="rows" tabindex="0" aria-label="Result rows">
            <div class="rows-spacer" style=move || format!("height: {}px", full_height())>
                <table class="table rows-table" style=table_style>
                    {colgroup}
                    <thead><tr><th class="num">"#"</th>{header}<th class="filler" aria-hidden="true"></th></tr></thead>
                    <tbody>
                        {move || {
                            let start = first.get();
                            let end = (start + visible).min(total.get());
                            (start..end)
                                .map(|row| {
                                    let cells = blocks.with(|blocks| blocks.get(&(row / block_size)).and_then(|block| block.get((row % block_size) as usize).cloned()));
                                    view! {
                                        <tr data-test="row" data-row=row>
                                            <td class="num muted">{row + 1}</td>
                                            {match cells {
                                                Some(cells) => (0u32..).zip(cells).map(|(column, cell)| {
                                                    let cut = cuts.with(|cuts| cuts.get(&(row, column)).copied());
                                                    let whole = cut.map(|bytes| WholeValue { session: session.clone(), seq, row, column, bytes });
                                                    let place = Place { row, column, fits: width_of(column as usize) };
                                                    view! { <td>{cell_view(cell, whole, place, expanded)}</td> }.into_any()
                                                }).collect_view().into_any(),
                                                None => view! { <td colspan=width class="muted">"…"</td> }.into_any(),
                                            }}
                                            <td class="filler" aria-hidden="true"></td>
                                        </tr>
                                    }
                                })
                                .collect_view()
                        }}
                    </tbody>
                </table>
            </div>
        </div>
        <ExpandedValue expanded=expanded columns=columns.clone()/>
    }
}

/// A value opened whole under the grid: which row and column, and its text.
#[derive(Clone)]
struct Expanded {
    row: u64,
    column: u32,
    text: String,
}

/// Where a cell is and how many characters its column shows.
#[derive(Clone, Copy)]
struct Place {
    row: u64,
    column: u32,
    fits: usize,
}

#[component]
fn ExpandedValue(expanded: RwSignal<Option<Expanded>>, columns: Vec<Column>) -> impl IntoView {
    let copied = RwSignal::new(false);
    Effect::new(move |_| {
        expanded.track();
        copied.set(false);
    });
    move || {
        expanded.get().map(|value| {
            let text = value.text.clone();
            let name = columns
                .get(value.column as usize)
                .map_or("", |column| column.name.as_str());
            let heading = format!("Row {} · {name}", grouped(value.row + 1));
            let copy = move |_| {
                let text = text.clone();
                spawn_local(async move { copy_text(&text, copied).await });
            };
            view! {
                <section class="cell-panel card" data-test="cell-panel" aria-label="Whole value">
                    <div class="cell-panel-head">
                        <strong>{heading}</strong>
                        <button type="button" class="link-button" data-test="cell-panel-copy" on:click=copy>
                            {move || if copied.get() { "Copied" } else { "Copy" }}
                        </button>
                        <button type="button" class="link-button" data-test="cell-panel-close" on:click=move |_| expanded.set(None)>"Close"</button>
                    </div>
                    <pre class="cell-panel-text" data-test="cell-panel-text">{value.text.clone()}</pre>
                </section>
            }
        })
    }
}

/// A column's width from its name alone, in characters.
fn name_width(column: &Column) -> usize {
    // Headers are bold: a little wider than the same characters in a cell.
    (column.name.chars().count() + 1).clamp(MIN_COLUMN_CH, MAX_COLUMN_CH)
}

/// Each column's width in characters: its name's, or its widest value's among `rows` with room
/// for values a little wider further down (ids and counts grow: `row 100` then `row 5000001`),
/// within [`MIN_COLUMN_CH`, `MAX_COLUMN_CH`].
fn column_widths(columns: &[Column], rows: &[Vec<Cell>]) -> Vec<usize> {
    columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let widest = rows
                .iter()
                .filter_map(|row| row.get(index))
                .map(|cell| cell.text().map_or(NULL_CH, |text| text.chars().count()))
                .max()
                .unwrap_or(0);
            let room = (widest / 2).max(4);
            (widest + room)
                .max(name_width(column))
                .clamp(MIN_COLUMN_CH, MAX_COLUMN_CH)
        })
        .collect()
}

/// Where the whole of a cut value is, and how long it is.
struct WholeValue {
    session: String,
    seq: u64,
    row: u64,
    column: u32,
    bytes: u64,
}

fn cell_view(
    cell: Cell,
    whole: Option<WholeValue>,
    place: Place,
    expanded: RwSignal<Option<Expanded>>,
) -> AnyView {
    let numeric = matches!(cell, Cell::Bool(_) | Cell::Int(_) | Cell::Float(_));
    let Some(text) = cell.text().map(|text| text.into_owned()) else {
        return view! { <span class="null">"NULL"</span> }.into_any();
    };
    let Some(whole) = whole else {
        // Counted in characters, the column in `ch` (a digit's width): a value of wide letters
        // may still be cut by the style sheet, so its whole text is on hover too.
        if text.chars().count() <= place.fits && !text.contains('\n') {
            let title = text.clone();
            return view! { <span class:num=numeric title=title>{text}</span> }.into_any();
        }
        // Wider than its column: cut here, whole in the panel.
        let open = {
            let text = text.clone();
            move |_| {
                expanded.set(Some(Expanded {
                    row: place.row,
                    column: place.column,
                    text: text.clone(),
                }))
            }
        };
        return view! {
            <div class="cell-cut">
                <span class="cell-text" class:num=numeric title=text.clone()>{text.clone()}</span>
                <button type="button" class="link-button cell-more" data-test="cell-expand" aria-label="Show the whole value" on:click=open>"more"</button>
            </div>
        }
        .into_any();
    };
    let url = api::cell_url(&whole.session, whole.seq, whole.row, whole.column);
    let size = format!("… {} in all ", human_bytes(whole.bytes));
    let copied = RwSignal::new(false);
    let copy = move |_| {
        let WholeValue {
            session,
            seq,
            row,
            column,
            ..
        } = &whole;
        let (session, seq, row, column) = (session.clone(), *seq, *row, *column);
        spawn_local(async move {
            if let Ok(text) = api::cell_text(&session, seq, row, column).await {
                copy_text(&text, copied).await;
            }
        });
    };
    view! {
        <div class="cell-cut" data-test="cell-cut">
            <span class="cell-text">{text}</span>
            <span class="cell-more muted">
                {size}
                <a href=url target="_blank" rel="noopener" data-test="cell-open">"open"</a>
                " "
                <button type="button" class="link-button" data-test="cell-copy" on:click=copy>
                    {move || if copied.get() { "copied" } else { "copy" }}
                </button>
            </span>
        </div>
    }
    .into_any()
}

/// The grid's height in pixels: its rows and header, up to [`VIEW_HEIGHT`] (then it scrolls), so
/// a small result takes the room it needs and no more. The 2 pixels are its borders.
fn fitted_height(rows: u64) -> f64 {
    VIEW_HEIGHT.min((rows as f64 + 1.0) * ROW_HEIGHT + 2.0)
}
