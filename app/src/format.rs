//! Showing times and sizes the way people read them, in the browser's locale and time zone.

use loupe_protocol::Timestamp;
use wasm_bindgen::JsValue;

/// The local date and time to the second, `2026-12-07 17:20:03`: sortable, the same width on
/// every row, in the zone [`time_zone`] names.
pub fn absolute_time(at: Timestamp) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.as_millis_f64()));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date(),
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}

/// The browser's time zone as the IANA name (`Europe/Berlin`), else its offset from UTC now
/// (`UTC+01:00`).
pub fn time_zone() -> String {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    js_sys::Reflect::get(&options, &JsValue::from_str("timeZone"))
        .ok()
        .and_then(|zone| zone.as_string())
        .filter(|zone| !zone.is_empty())
        .unwrap_or_else(|| {
            // getTimezoneOffset is minutes *behind* UTC: -60 in Berlin in winter.
            let behind = js_sys::Date::new_0().get_timezone_offset() as i64;
            let ahead = -behind;
            let sign = if ahead < 0 { '-' } else { '+' };
            format!("UTC{sign}{:02}:{:02}", ahead.abs() / 60, ahead.abs() % 60)
        })
}

/// A count with the locale's digit grouping and the noun's right number: `1 row`,
/// `12,345 rows`.
pub fn count(value: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(value), if value == 1 { one } else { many })
}

/// `value` with the browser's digit grouping: "1,234,567" in en-US.
pub fn grouped(value: u64) -> String {
    js_sys::Number::from(value as f64)
        .to_locale_string("default")
        .into()
}

/// "just now", "5 min ago", "3 h ago", "2 days ago".
pub fn relative_time(at: Timestamp) -> String {
    let seconds = ((js_sys::Date::now() - at.as_millis_f64()) / 1000.0).max(0.0) as u64;
    match seconds {
        0..=44 => "just now".into(),
        45..=3599 => format!("{} min ago", (seconds + 30) / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        _ => match seconds / 86_400 {
            1 => "yesterday".into(),
            days => format!("{days} days ago"),
        },
    }
}
