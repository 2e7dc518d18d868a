//! A result set, however many rows: a virtual scroll area whose height stands for every row
//! (scaled down past what browsers allow), with only the rows in view in the DOM, fetched by
//! window as the reader scrolls.

use std::collections::HashMap;

use leptos::{html, prelude::*, task::spawn_local};
use loupe_protocol::{Cell, Column};

use crate::api;

const ROW_HEIGHT: f64 = 28.0;
const VIEW_HEIGHT: f64 = 420.0;
/// Browsers cap element heights (Chromium near 33 million pixels); beyond this the scroll
/// position maps to rows proportionally.
const MAX_SCROLL_HEIGHT: f64 = 8_000_000.0;
/// Rows fetched per request when the server's `preview_rows` is out of bounds.
const MIN_BLOCK: u64 = 20;
const MAX_BLOCK: u64 = 1000;

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
    let container = NodeRef::<html::Div>::new();
    let visible = (VIEW_HEIGHT / ROW_HEIGHT).ceil() as u64 + 1;
    let full_height = move || (total.get() as f64 * ROW_HEIGHT).min(MAX_SCROLL_HEIGHT) + ROW_HEIGHT;

    // Fetches the blocks of rows around `first` that are not loaded, and forgets far ones.
    let fill = {
        let session = session.clone();
        move || {
            let from = first.get_untracked() / block_size;
            let to = (first.get_untracked() + visible) / block_size;
            for block in from..=to {
                if blocks.with_untracked(|blocks| blocks.contains_key(&block))
                    || block * block_size >= total.get_untracked()
                {
                    continue;
                }
                blocks.update(|blocks| {
                    blocks.insert(block, Vec::new());
                    blocks.retain(|known, _| known.abs_diff(block) <= 4);
                });
                let session = session.clone();
                spawn_local(async move {
                    if let Ok(window) =
                        api::rows(&session, seq, block * block_size, block_size as u32).await
                    {
                        blocks.update(|blocks| drop(blocks.insert(block, window.rows)));
                    }
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
    let width = columns.len();
    view! {
        <div class="rows-meta muted" data-test="rows-total">{move || format!("{} rows", total.get())}</div>
        <div class="rows" node_ref=container on:scroll=on_scroll style=format!("height: {VIEW_HEIGHT}px") data-test="rows" tabindex="0" aria-label="Result rows">
            <div class="rows-spacer" style=move || format!("height: {}px", full_height())>
                <table class="table rows-table">
                    <thead><tr><th class="num">"#"</th>{header}</tr></thead>
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
                                                Some(cells) => cells.into_iter().map(|cell| view! { <td>{cell_view(cell)}</td> }.into_any()).collect_view().into_any(),
                                                None => view! { <td colspan=width class="muted">"…"</td> }.into_any(),
                                            }}
                                        </tr>
                                    }
                                })
                                .collect_view()
                        }}
                    </tbody>
                </table>
            </div>
        </div>
    }
}

fn cell_view(cell: Cell) -> AnyView {
    match cell {
        Cell::Null => view! { <span class="null">"NULL"</span> }.into_any(),
        Cell::Bool(value) => view! { <span class="num">{value.to_string()}</span> }.into_any(),
        Cell::Int(value) => view! { <span class="num">{value.to_string()}</span> }.into_any(),
        Cell::Float(value) => view! { <span class="num">{value.to_string()}</span> }.into_any(),
        Cell::Text(text) => view! { <span>{text}</span> }.into_any(),
    }
}
