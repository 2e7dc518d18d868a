//! A result set's rows read back for a page or a client: windows bounded in rows and in bytes,
//! long cells cut (and said to be cut), and one whole cell on request.
//!
//! Why bytes as well as rows: a hundred rows of a 3 MiB `repeat('x', …)` would be a 300 MiB
//! response that a browser tab then renders cell by cell.

use std::ops::RangeInclusive;

use loupe_protocol::{Cell, CutCell};

use crate::{error::ApiError, store::Store};

/// Cell text in one window at most, in bytes. A window always holds at least one row.
pub const MAX_WINDOW_BYTES: usize = 1024 * 1024;
/// Where a cell is cut when the client does not say (`cell_bytes`).
pub const DEFAULT_CELL_BYTES: u32 = 4096;
pub const CELL_BYTES: RangeInclusive<u32> = 16..=1024 * 1024;

/// Rows `start..end` of result event `seq` as far as they fit [`MAX_WINDOW_BYTES`], each text
/// cell cut to `cell_bytes` (less where many columns must share one row's bound). `columns` is
/// how many the result set declares.
pub async fn window(
    store: &Store,
    session: &str,
    seq: i64,
    (start, end): (u64, u64),
    columns: usize,
    cell_bytes: usize,
) -> Result<(Vec<Vec<Cell>>, Vec<CutCell>), ApiError> {
    let mut rows = Vec::new();
    let mut cut = Vec::new();
    if start >= end {
        return Ok((rows, cut));
    }
    let mut bytes = 0usize;
    for page in store
        .row_pages(session, seq, start as i64, end as i64)
        .await?
    {
        let page_rows: Vec<Vec<Cell>> =
            serde_json::from_str(&page.data).map_err(ApiError::internal)?;
        let first = page.first_row as u64;
        for (number, mut row) in (first..).zip(page_rows) {
            if !(start..end).contains(&number) {
                continue;
            }
            // Even the first row must fit the bound, however wide: its cells share it. (A row
            // may be wider than the columns recorded, so its own width counts.)
            let share = MAX_WINDOW_BYTES / row.len().max(columns).max(1);
            let limit = cell_bytes.min(share).max(1);
            let mut row_bytes = 0;
            let mut row_cut = Vec::new();
            for (column, cell) in (0u32..).zip(row.iter_mut()) {
                if let Cell::Text(text) = cell
                    && let Some(whole) = cut_text(text, limit)
                {
                    row_cut.push(CutCell {
                        row: number,
                        column,
                        bytes: whole,
                    });
                }
                row_bytes += cell.text().map_or(0, |text| text.len());
            }
            if !rows.is_empty() && bytes + row_bytes > MAX_WINDOW_BYTES {
                return Ok((rows, cut));
            }
            bytes += row_bytes;
            rows.push(row);
            cut.extend(row_cut);
        }
    }
    Ok((rows, cut))
}

/// Row `row` of result event `seq`, whole, if the result set has it.
pub async fn row(
    store: &Store,
    session: &str,
    seq: i64,
    row: u64,
) -> Result<Option<Vec<Cell>>, ApiError> {
    let Some(number) = i64::try_from(row).ok().filter(|number| *number < i64::MAX) else {
        return Ok(None);
    };
    for page in store.row_pages(session, seq, number, number + 1).await? {
        let first = page.first_row as u64;
        if let Some(offset) = row.checked_sub(first) {
            let page_rows: Vec<Vec<Cell>> =
                serde_json::from_str(&page.data).map_err(ApiError::internal)?;
            if let Some(found) = page_rows.into_iter().nth(offset as usize) {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// Cuts `text` to at most `limit` bytes at a character boundary; the whole length when cut.
fn cut_text(text: &mut String, limit: usize) -> Option<u64> {
    if text.len() <= limit {
        return None;
    }
    let whole = text.len() as u64;
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    Some(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_character_boundary_and_reports_the_whole_length() {
        let mut text = "ab€cd".to_owned(); // € is three bytes: 2..5
        assert_eq!(cut_text(&mut text, 3), Some(7));
        assert_eq!(text, "ab");
        let mut short = "abc".to_owned();
        assert_eq!(cut_text(&mut short, 3), None);
        assert_eq!(short, "abc");
    }
}
