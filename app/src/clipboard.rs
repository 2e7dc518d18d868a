//! Copying text for the user, and saying so only when it worked.

use leptos::prelude::*;

/// Writes `text` to the clipboard (`navigator.clipboard.writeText`, a promise) and, once the
/// browser says it is there, sets `copied` for two seconds. A refusal (no permission, a page not
/// served over HTTPS or from localhost, where `navigator.clipboard` is missing) leaves `copied`
/// unset rather than claiming a copy that did not happen.
pub async fn copy_text(text: &str, copied: RwSignal<bool>) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let clipboard = window.navigator().clipboard();
    // `navigator.clipboard` is undefined outside secure contexts.
    if wasm_bindgen::JsValue::from(clipboard.clone()).is_undefined() {
        return;
    }
    if wasm_bindgen_futures::JsFuture::from(clipboard.write_text(text))
        .await
        .is_ok()
    {
        copied.try_set(true);
        set_timeout(
            move || {
                copied.try_set(false);
            },
            std::time::Duration::from_secs(2),
        );
    }
}
