//! Rows as delimited text: csv (RFC 4180) for downloads, tab-separated lines for `txt` downloads
//! and `loupe exec`. Rows come either as [`Cell`]s or straight from a stored row page (its JSON
//! text), which is transcoded value by value into the output without building a `Cell` or a
//! `String` per value: a million-row csv is made from about a thousand pages.
//!
//! Both ways print a value as [`Cell::text`] does: serde_json reads the number, and its `Display`
//! writes it, as `Cell::Int`/`Cell::Float` would.

use std::{fmt, io::Write};

use loupe_protocol::Cell;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// Which delimited form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimited {
    /// RFC 4180: fields separated by commas, records by CRLF; a field with a comma, quote, CR or
    /// LF is quoted, quotes doubled. NULL is an empty field; the empty string is `""`
    /// (PostgreSQL's `COPY … CSV` convention). Written here rather than with the `csv` crate,
    /// whose writer quotes by one rule for all fields and so cannot keep NULL and `""` apart.
    Csv,
    /// Fields separated by tabs, lines by LF; NULL empty, tabs and newlines escaped as `\t`, `\n`.
    Tsv,
}

impl Delimited {
    fn separator(self) -> u8 {
        match self {
            Delimited::Csv => b',',
            Delimited::Tsv => b'\t',
        }
    }

    fn end_of_record(self) -> &'static [u8] {
        match self {
            Delimited::Csv => b"\r\n",
            Delimited::Tsv => b"\n",
        }
    }

    /// Appends one non-NULL value's text.
    fn text(self, out: &mut Vec<u8>, text: &str) {
        match self {
            Delimited::Csv if text.is_empty() || needs_quotes(text) => {
                out.push(b'"');
                for piece in text.split_inclusive('"') {
                    out.extend_from_slice(piece.as_bytes());
                    if piece.ends_with('"') {
                        out.push(b'"');
                    }
                }
                out.push(b'"');
            }
            Delimited::Csv => out.extend_from_slice(text.as_bytes()),
            Delimited::Tsv => {
                for byte in text.bytes() {
                    match byte {
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        _ => out.push(byte),
                    }
                }
            }
        }
    }

    /// Appends one record.
    pub fn row(self, out: &mut Vec<u8>, row: &[Cell]) {
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                out.push(self.separator());
            }
            if let Some(text) = cell.text() {
                self.text(out, &text);
            }
        }
        out.extend_from_slice(self.end_of_record());
    }

    /// Appends rows `[skip, skip + take)` of a stored row page (a JSON array of arrays of
    /// values, as `row_pages.data` holds them). Errors when the page is not such JSON.
    pub fn page(
        self,
        out: &mut Vec<u8>,
        page: &str,
        skip: usize,
        take: usize,
    ) -> Result<(), serde_json::Error> {
        let mut reader = serde_json::Deserializer::from_str(page);
        Page {
            format: self,
            out,
            wanted: skip..skip.saturating_add(take),
        }
        .deserialize(&mut reader)?;
        reader.end()
    }
}

/// Whether a csv field must be quoted: it holds a comma, quote, CR or LF. A byte scan (these are
/// all ASCII, so no byte of a multi-byte character matches) rather than `str::contains` with a
/// char set, which decodes every character.
fn needs_quotes(text: &str) -> bool {
    text.bytes()
        .any(|byte| matches!(byte, b',' | b'"' | b'\r' | b'\n'))
}

/// The page's array of rows; rows outside `wanted` are read past.
struct Page<'o> {
    format: Delimited,
    out: &'o mut Vec<u8>,
    wanted: std::ops::Range<usize>,
}

impl<'de> DeserializeSeed<'de> for Page<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Page<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut rows: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let more = if self.wanted.contains(&index) {
                let row = Row {
                    format: self.format,
                    out: &mut *self.out,
                };
                rows.next_element_seed(row)?.is_some()
            } else {
                rows.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// One row: an array of values, written as one record.
struct Row<'o> {
    format: Delimited,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a row: an array of values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut values: A) -> Result<(), A::Error> {
        let mut first = true;
        loop {
            if !first {
                // Taken back below if there was no value after all.
                self.out.push(self.format.separator());
            }
            let value = Value {
                format: self.format,
                out: &mut *self.out,
            };
            if values.next_element_seed(value)?.is_none() {
                if !first {
                    self.out.pop();
                }
                break;
            }
            first = false;
        }
        self.out.extend_from_slice(self.format.end_of_record());
        Ok(())
    }
}

/// One value, written as its text (nothing for NULL).
struct Value<'o> {
    format: Delimited,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Value<'_> {
    /// A number or boolean: never empty, never holding a delimiter or quote.
    fn display(self, value: impl fmt::Display) {
        write!(self.out, "{value}").expect("writing to memory cannot fail");
    }

    /// What `Display` writes, by itoa, without the formatting machinery.
    fn integer(self, value: i64) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }
}

impl Visitor<'_> for Value<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("null, a boolean, a number or a string")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.display(value);
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.integer(value);
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        // As `Cell` reads it: past i64, a float.
        match i64::try_from(value) {
            Ok(value) => self.integer(value),
            Err(_) => self.display(value as f64),
        }
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        self.display(value);
        Ok(())
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.format.text(self.out, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells() -> Vec<Vec<Cell>> {
        vec![
            vec![
                Cell::Int(1),
                Cell::Null,
                Cell::Text(String::new()),
                Cell::Text("a,b".into()),
                Cell::Text("say \"hi\"\nbye".into()),
            ],
            vec![
                Cell::Int(i64::MIN),
                Cell::Float(0.1),
                Cell::Float(1e300),
                Cell::Bool(false),
                Cell::Text("tab\there ü".into()),
            ],
            vec![],
            vec![Cell::Null],
        ]
    }

    #[test]
    fn quotes_csv_fields_only_when_needed_and_keeps_null_apart_from_empty() {
        let mut out = Vec::new();
        Delimited::Csv.row(&mut out, &cells()[0]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1,,\"\",\"a,b\",\"say \"\"hi\"\"\nbye\"\r\n"
        );
    }

    #[test]
    fn escapes_tabs_and_newlines_in_tsv() {
        let mut out = Vec::new();
        Delimited::Tsv.row(&mut out, &cells()[1]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "-9223372036854775808\t0.1\t{}\tfalse\ttab\\there ü\n",
                1e300_f64
            )
        );
    }

    #[test]
    fn a_stored_page_transcodes_exactly_as_its_cells_print() {
        let rows = cells();
        let page = serde_json::to_string(&rows).unwrap();
        for format in [Delimited::Csv, Delimited::Tsv] {
            for (skip, take) in [(0, usize::MAX), (0, 4), (1, 2), (3, 1), (4, 9), (2, 0)] {
                let mut expected = Vec::new();
                for row in rows.iter().skip(skip).take(take) {
                    format.row(&mut expected, row);
                }
                let mut out = Vec::new();
                format.page(&mut out, &page, skip, take).unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    String::from_utf8(expected).unwrap(),
                    "{format:?} rows {skip}+{take}"
                );
            }
        }
        // Past i64, as Cell reads it.
        let mut out = Vec::new();
        Delimited::Csv
            .page(&mut out, "[[18446744073709551615]]", 0, 1)
            .unwrap();
        let cell: Cell = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\r\n", cell.text().unwrap())
        );
    }

    #[test]
    fn a_page_that_is_not_rows_is_an_error() {
        for bad in ["", "{}", "[1]", "[[[1]]]", "[[1]] trailing", "[[1]"] {
            let mut out = Vec::new();
            assert!(
                Delimited::Csv.page(&mut out, bad, 0, 10).is_err(),
                "{bad:?}"
            );
        }
    }
}
