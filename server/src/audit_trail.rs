//! The audit trail read back: its events as the API shows them, and the whole of a filtered
//! trail as a file (`GET /api/audit/export`), streamed a page at a time by keyset (`id`
//! descending) so memory stays flat however long the trail is.

use axum::body::Bytes;
use futures_util::Stream;
use loupe_protocol::{AuditEvent, Cell, Timestamp};

use crate::{
    sessions::{delimited::Delimited, render::Format},
    store::{AuditFilter, AuditRecord, Store},
};

/// Events read from storage per step of an export.
const EXPORT_PAGE: u32 = 1000;

/// The columns of a csv export, in order. Times are RFC 3339 in UTC; an absent value is an empty
/// field. Values are written as recorded (a review note is free text): a spreadsheet may read
/// one that starts with `=` as a formula, so open the file as text (or import it) to be sure.
const CSV_HEADER: [&str; 7] = ["id", "at", "actor", "action", "target", "detail", "address"];

/// A stored event as the API shows it.
pub fn event(record: AuditRecord) -> AuditEvent {
    AuditEvent {
        id: record.id,
        at: Timestamp::from_micros(record.at_us),
        actor: record.actor_name,
        action: record.action,
        target: record.target,
        detail: record.detail,
        address: record.address,
    }
}

/// The formats the whole trail downloads in: `csv` ([`CSV_HEADER`], RFC 4180 as
/// [`Delimited::Csv`] writes it) and `jsonl` (one [`AuditEvent`] object per line).
pub fn export_format(name: &str) -> Option<Format> {
    Format::parse(name).filter(|format| matches!(format, Format::Csv | Format::Jsonl))
}

/// Every event `filter` matches (its `before_id` and `limit` are the export's own), newest
/// first, in `format` (from [`export_format`]). Events recorded after the first page is read
/// are not in it (the export's own `audit.exported`, recorded before, is).
pub fn export(
    store: Store,
    filter: AuditFilter,
    format: Format,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut header = Vec::new();
    if format == Format::Csv {
        let names = CSV_HEADER.map(|name| Cell::Text(name.to_owned()));
        Delimited::Csv.row(&mut header, &names);
    }
    let start = Export {
        store,
        filter: AuditFilter {
            before_id: None,
            limit: EXPORT_PAGE,
            ..filter
        },
        format,
        pending: Some(header),
        done: false,
    };
    futures_util::stream::try_unfold(start, |mut export| async move {
        match export.next_piece().await? {
            Some(piece) => Ok(Some((piece, export))),
            None => Ok(None),
        }
    })
}

struct Export {
    store: Store,
    filter: AuditFilter,
    format: Format,
    /// Bytes to send before the next page (the csv header).
    pending: Option<Vec<u8>>,
    done: bool,
}

impl Export {
    async fn next_piece(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        let mut out = self.pending.take().unwrap_or_default();
        if !self.done {
            let page = self
                .store
                .list_audit(&self.filter)
                .await
                .map_err(std::io::Error::other)?;
            self.done = page.len() < EXPORT_PAGE as usize;
            self.filter.before_id = page.last().map(|record| record.id);
            for record in page {
                self.write(&mut out, event(record))?;
            }
        }
        Ok((!out.is_empty()).then(|| Bytes::from(out)))
    }

    fn write(&self, out: &mut Vec<u8>, event: AuditEvent) -> Result<(), std::io::Error> {
        match self.format {
            Format::Csv => {
                let text = |value: Option<String>| value.map_or(Cell::Null, Cell::Text);
                let row = [
                    Cell::Int(event.id),
                    Cell::Text(event.at.to_string()),
                    text(event.actor),
                    Cell::Text(event.action),
                    text(event.target),
                    text(event.detail),
                    text(event.address),
                ];
                Delimited::Csv.row(out, &row);
            }
            // `export_format` offers no other.
            Format::Jsonl | Format::Txt | Format::Cast => {
                serde_json::to_writer(&mut *out, &event).map_err(std::io::Error::other)?;
                out.push(b'\n');
            }
        }
        Ok(())
    }
}
