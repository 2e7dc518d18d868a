//! Filters kept in the page's address (shareable, and Back undoes one), as the sessions list and
//! the audit trail keep them.

use leptos_router::params::ParamsMap;

/// `path` with `params`, where `key` is set to `value` (removed when blank). Choosing a period
/// drops the custom `from`/`to` of the one before.
pub fn with_param(path: &str, params: &ParamsMap, key: &str, value: &str) -> String {
    let mut pairs: Vec<(String, String)> = params
        .clone()
        .into_iter()
        .filter(|(name, _)| name != key && !(key == "period" && (name == "from" || name == "to")))
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    if !value.trim().is_empty() {
        pairs.push((key.to_owned(), value.to_owned()));
    }
    if pairs.is_empty() {
        return path.to_owned();
    }
    let search: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", js_sys::encode_uri_component(value)))
        .collect();
    format!("{path}?{}", search.join("&"))
}
