//! Menus that close the way people expect (WAI-ARIA Authoring Practices, "Menu Button"): on
//! Escape, on a press outside the menu and its button, and after a choice.

use leptos::{ev, html, prelude::*};
use wasm_bindgen::JsCast;

/// Closes `open` on Escape and on a press outside `root` (the element holding the button and the
/// menu) for as long as the calling component lives. A choice closes it too: give the menu
/// `on:click=move |_| open.set(false)`.
pub fn dismiss_menu(open: RwSignal<bool>, root: NodeRef<html::Div>) {
    let escape = window_event_listener(ev::keydown, move |event| {
        if event.key() == "Escape" && open.get_untracked() {
            open.set(false);
        }
    });
    let outside = window_event_listener(ev::pointerdown, move |event| {
        if !open.get_untracked() {
            return;
        }
        let target = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::Node>().ok());
        let inside = root
            .get_untracked()
            .is_some_and(|root| root.contains(target.as_ref()));
        if !inside {
            open.set(false);
        }
    });
    on_cleanup(move || {
        escape.remove();
        outside.remove();
    });
}
