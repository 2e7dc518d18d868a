//! Values as the target database wrote them, kept as its own text form: a value becomes a JSON
//! number or boolean only where nothing of that form is lost.
//!
//! The rule for numbers: the text must print back identically from the number (`42`, `1.5`),
//! so `1e+300`, `0.10` and PostgreSQL's `numeric` or MySQL's `DECIMAL` stay text, as the
//! database printed them, and a JavaScript reader of a download never meets an `i64` it would
//! round.

use loupe_protocol::Cell;

const INTEGER_TYPES: [&str; 11] = [
    "INT2",
    "INT4",
    "INT8",
    "OID",
    "TINYINT",
    "SMALLINT",
    "MEDIUMINT",
    "INT",
    "INTEGER",
    "BIGINT",
    "YEAR",
];
const FLOAT_TYPES: [&str; 5] = ["FLOAT4", "FLOAT8", "FLOAT", "DOUBLE", "REAL"];
/// Integers beyond ±2^53 stay text: JSON readers that hold numbers as doubles would round them.
const EXACT_IN_A_DOUBLE: u64 = 1 << 53;

/// A text-form value as a cell, typed by its column's type name.
pub fn typed_cell(type_name: &str, text: &str) -> Cell {
    let upper = type_name.to_ascii_uppercase();
    // MySQL's unsigned integers (`INT UNSIGNED`) are integers under the same rule.
    let upper = upper.strip_suffix(" UNSIGNED").unwrap_or(&upper);
    if INTEGER_TYPES.contains(&upper) {
        if let Ok(value) = text.parse::<i64>()
            && value.unsigned_abs() <= EXACT_IN_A_DOUBLE
            && value.to_string() == text
        {
            return Cell::Int(value);
        }
    } else if FLOAT_TYPES.contains(&upper) {
        if let Ok(value) = text.parse::<f64>()
            && value.is_finite()
            && value.to_string() == text
        {
            return Cell::Float(value);
        }
    } else if upper == "BOOL" || upper == "BOOLEAN" {
        // PostgreSQL's `t`/`f`: a JSON boolean says the same without ambiguity.
        match text {
            "t" | "true" => return Cell::Bool(true),
            "f" | "false" => return Cell::Bool(false),
            _ => {}
        }
    }
    Cell::Text(text.to_owned())
}

/// An integer the database holds as a number (SQLite's INTEGER storage class).
pub fn integer_cell(value: i64) -> Cell {
    if value.unsigned_abs() <= EXACT_IN_A_DOUBLE {
        Cell::Int(value)
    } else {
        Cell::Text(value.to_string())
    }
}

/// Bytes as lowercase hexadecimal, for binary values in each database's hex literal form.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_only_where_they_print_back_as_written() {
        assert_eq!(typed_cell("INT8", "42"), Cell::Int(42));
        assert_eq!(typed_cell("int4", "-7"), Cell::Int(-7));
        assert_eq!(typed_cell("float8", "1.5"), Cell::Float(1.5));
        assert_eq!(typed_cell("FLOAT8", "1e+300"), Cell::Text("1e+300".into()));
        assert_eq!(typed_cell("FLOAT8", "100"), Cell::Float(100.0));
        assert_eq!(typed_cell("FLOAT4", "1.1"), Cell::Float(1.1));
        assert_eq!(typed_cell("FLOAT8", "NaN"), Cell::Text("NaN".into()));
        assert_eq!(
            typed_cell("FLOAT8", "Infinity"),
            Cell::Text("Infinity".into())
        );
        assert_eq!(
            typed_cell("INT8", "9223372036854775807"),
            Cell::Text("9223372036854775807".into())
        );
        assert_eq!(typed_cell("INT8", "9007199254740992"), Cell::Int(1 << 53));
        assert_eq!(
            typed_cell("INT8", "-9223372036854775808"),
            Cell::Text("-9223372036854775808".into())
        );
        assert_eq!(integer_cell(i64::MIN), Cell::Text(i64::MIN.to_string()));
        assert_eq!(integer_cell(-(1 << 53)), Cell::Int(-(1 << 53)));
        assert_eq!(
            typed_cell("NUMERIC", "12345678901234567890.50"),
            Cell::Text("12345678901234567890.50".into())
        );
        assert_eq!(typed_cell("BOOL", "t"), Cell::Bool(true));
        assert_eq!(typed_cell("TINYINT", "1"), Cell::Int(1));
        assert_eq!(typed_cell("TEXT", "NULL"), Cell::Text("NULL".into()));
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
    }
}
