//! Showing times and sizes the way people read them, in the browser's locale and time zone.

use loupe_protocol::Timestamp;
use wasm_bindgen::JsValue;

/// The exact local date and time, e.g. for a tooltip.
pub fn local_time(at: Timestamp) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.as_millis_f64()));
    String::from(date.to_locale_string("default", &JsValue::UNDEFINED))
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
