//! The period a list covers, kept in the URL: a preset (`period=15m`, `1h`, `today`, `24h`, `7d`,
//! `30d`) or a custom range (`period=custom&from=…&to=…`, RFC 3339), picked with the browser's
//! own date-time fields in the user's zone. A bound that is not a date, or a range that ends
//! before it starts, is an error on its field; the list is not read with it half-applied.

use leptos::prelude::*;
use leptos_router::params::ParamsMap;
use loupe_protocol::Timestamp;
use wasm_bindgen::JsValue;

/// The presets: URL key, label, and how far back they reach (`None`: since local midnight).
const PRESETS: [(&str, &str, Option<i64>); 6] = [
    ("15m", "Last 15 minutes", Some(15 * 60)),
    ("1h", "Last hour", Some(3600)),
    ("today", "Today", None),
    ("24h", "Last 24 hours", Some(86_400)),
    ("7d", "Last 7 days", Some(7 * 86_400)),
    ("30d", "Last 30 days", Some(30 * 86_400)),
];

/// What a half-typed date-time field says.
const INCOMPLETE: &str = "finish the date and time, or clear the field";

/// A bound the list cannot use: which field (`from` or `to`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodProblem {
    pub field: &'static str,
    pub message: String,
}

/// The `[from, to)` bounds the URL asks for, as of now.
pub fn bounds(params: &ParamsMap) -> Result<(Option<Timestamp>, Option<Timestamp>), PeriodProblem> {
    let text = |key: &str| params.get(key).filter(|value| !value.is_empty());
    let now_ms = js_sys::Date::now();
    match text("period").as_deref() {
        None => Ok((None, None)),
        Some("custom") => {
            let read = |field: &'static str| -> Result<Option<Timestamp>, PeriodProblem> {
                text(field)
                    .map(|value| {
                        value.parse::<Timestamp>().map_err(|error| PeriodProblem {
                            field,
                            message: error.to_string(),
                        })
                    })
                    .transpose()
            };
            let (from, to) = (read("from")?, read("to")?);
            if let (Some(from), Some(to)) = (from, to)
                && to <= from
            {
                return Err(PeriodProblem {
                    field: "to",
                    message: "the end must be later than the start".into(),
                });
            }
            Ok((from, to))
        }
        Some(key) => {
            let (_, _, reach) = PRESETS
                .iter()
                .find(|(preset, ..)| *preset == key)
                .ok_or_else(|| PeriodProblem {
                    field: "period",
                    message: format!("“{key}” is not a period this list knows"),
                })?;
            let from_ms = match reach {
                Some(seconds) => now_ms - *seconds as f64 * 1000.0,
                None => local_midnight_ms(),
            };
            Ok((Some(micros(from_ms)), None))
        }
    }
}

/// The period's select and, for a custom range, its two fields with their errors. `set` writes a
/// URL parameter (an empty value removes it); `current` reads one.
#[component]
pub fn PeriodPicker(
    set: Callback<(&'static str, String)>,
    current: Signal<ParamsMap>,
) -> impl IntoView {
    let value = move |key: &'static str| current.with(|params| params.get(key).unwrap_or_default());
    let problem = Memo::new(move |_| current.with(|params| bounds(params).err()));
    // Fields left half-typed: the URL keeps their last whole value, the field says what is wrong.
    // A new URL (a preset, Back, a whole value) redraws the fields from it, so it forgets them.
    let incomplete = RwSignal::new(Vec::<&'static str>::new());
    Effect::new(move |_| {
        current.track();
        incomplete.set(Vec::new());
    });
    let error_for = move |field: &'static str| {
        if incomplete.with(|fields| fields.contains(&field)) {
            return Some(INCOMPLETE.to_owned());
        }
        problem.with(|problem| {
            problem
                .as_ref()
                .filter(|problem| problem.field == field)
                .map(|problem| problem.message.clone())
        })
    };
    // A datetime-local field holds a local time without a zone; its value is "" both when
    // cleared and when half-typed, which only the field's validity (`badInput`) tells apart.
    // Marks `field` half-typed or not; true when it holds a usable value (or none).
    let check = move |field: &'static str, input: &web_sys::HtmlInputElement| {
        let half_typed = input.validity().bad_input();
        incomplete.update(|fields| {
            fields.retain(|known| *known != field);
            if half_typed {
                fields.push(field);
            }
        });
        !half_typed
    };
    let changed = move |field: &'static str, event: leptos::ev::Event| {
        let input = event_target::<web_sys::HtmlInputElement>(&event);
        if check(field, &input) {
            set.run((field, from_local_input(&input.value())));
        }
    };
    // Half-typing an empty field changes no value, so no change event says so: leaving it does.
    let left = move |field: &'static str, event: leptos::ev::FocusEvent| {
        check(field, &event_target::<web_sys::HtmlInputElement>(&event));
    };
    let bound_field = move |field: &'static str, label: &'static str| {
        let test = format!("filter-{field}");
        let error_test = format!("filter-{field}-error");
        view! {
            <label>{label}
                <input type="datetime-local" step="1" data-test=test
                    aria-invalid=move || error_for(field).is_some().to_string()
                    prop:value=move || local_input_value(&value(field))
                    on:change=move |event| changed(field, event)
                    on:blur=move |event| left(field, event)/>
                {move || error_for(field).map(|message| view! {
                    <span class="field-error" role="alert" data-test=error_test.clone()>{message}</span>
                })}
            </label>
        }
    };
    view! {
        <label>"Period"
            <select data-test="filter-period" prop:value=move || value("period")
                on:change=move |event| set.run(("period", event_target_value(&event)))>
                <option value="">"Any time"</option>
                {PRESETS.map(|(key, label, _)| view! { <option value=key selected=move || value("period") == key>{label}</option> })}
                <option value="custom" selected=move || value("period") == "custom">"Custom range…"</option>
            </select>
            {move || error_for("period").map(|message| view! { <span class="field-error" role="alert">{message}</span> })}
        </label>
        <Show when=move || value("period") == "custom">
            {bound_field("from", "From")}
            {bound_field("to", "To")}
        </Show>
    }
}

fn micros(millis: f64) -> Timestamp {
    Timestamp::from_micros((millis * 1000.0) as i64)
}

fn local_midnight_ms() -> f64 {
    let today = js_sys::Date::new_0();
    today.set_hours(0);
    today.set_minutes(0);
    today.set_seconds(0);
    today.set_milliseconds(0);
    today.get_time()
}

/// An RFC 3339 bound from the URL as a datetime-local value (`2026-12-07T14:30:05`, local); the
/// text itself when it is not a timestamp, so the field shows what is wrong.
fn local_input_value(bound: &str) -> String {
    let Ok(at) = bound.parse::<Timestamp>() else {
        return bound.to_owned();
    };
    crate::format::absolute_time(at).replacen(' ', "T", 1)
}

/// A datetime-local value as RFC 3339 in UTC; empty for an empty (cleared) field, and the text
/// itself when the browser's parser does not take it, so the URL keeps it and the field says so.
fn from_local_input(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    // Without a zone, `Date` reads a date-time form as local time (ECMA-262, Date Time String
    // Format).
    let millis = js_sys::Date::new(&JsValue::from_str(value)).get_time();
    if millis.is_nan() {
        return value.to_owned();
    }
    micros(millis).to_string()
}
