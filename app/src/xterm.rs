//! xterm.js (npm `@xterm/xterm` 6, with `@xterm/addon-fit`), the terminal the browser draws
//! terminal sessions with. It is not part of the first load: [`load`] adds its script and
//! stylesheet from `/vendor/` (copied there by `cargo xtask` at build time) the first time a
//! page needs it. The bindings cover what Loupe uses; the names are xterm.js's own
//! (<https://xtermjs.org/docs/api/terminal/classes/terminal/>).

use std::{cell::RefCell, rc::Rc};

use futures_channel::oneshot;
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, prelude::*};

#[wasm_bindgen]
extern "C" {
    /// xterm.js's `Terminal` (the global its UMD build defines).
    #[wasm_bindgen(js_name = Terminal)]
    #[derive(Clone)]
    pub type XTerm;

    #[wasm_bindgen(catch, constructor, js_class = "Terminal")]
    fn construct(options: &JsValue) -> Result<XTerm, JsValue>;

    #[wasm_bindgen(method)]
    pub fn open(this: &XTerm, parent: &web_sys::HtmlElement);

    #[wasm_bindgen(method, js_name = write)]
    fn write_text(this: &XTerm, data: &str);

    #[wasm_bindgen(method, js_name = write)]
    fn write_bytes(this: &XTerm, data: &Uint8Array);

    /// Clears the screen, the scrollback and every mode: a blank terminal.
    #[wasm_bindgen(method)]
    pub fn reset(this: &XTerm);

    #[wasm_bindgen(method)]
    pub fn resize(this: &XTerm, cols: u16, rows: u16);

    #[wasm_bindgen(method)]
    pub fn focus(this: &XTerm);

    #[wasm_bindgen(method)]
    pub fn dispose(this: &XTerm);

    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &XTerm) -> u16;

    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &XTerm) -> u16;

    /// Keys typed and text pasted, as the terminal encodes them.
    #[wasm_bindgen(method, js_name = onData)]
    fn on_data(this: &XTerm, callback: &Closure<dyn FnMut(String)>) -> JsValue;

    /// `{cols, rows}` after the terminal changed size.
    #[wasm_bindgen(method, js_name = onResize)]
    fn on_resize(this: &XTerm, callback: &Closure<dyn FnMut(JsValue)>) -> JsValue;

    #[wasm_bindgen(method, js_name = loadAddon)]
    fn load_addon(this: &XTerm, addon: &JsValue);
}

/// `new FitAddon.FitAddon()`: `@xterm/addon-fit`'s UMD build defines the global `FitAddon` as
/// its module, whose `FitAddon` class sizes a terminal to its element.
#[derive(Clone)]
pub struct FitAddon(JsValue);

impl FitAddon {
    fn construct() -> Result<FitAddon, JsValue> {
        let module = Reflect::get(&js_sys::global(), &"FitAddon".into())?;
        let class = Reflect::get(&module, &"FitAddon".into())?;
        let class: js_sys::Function = class.dyn_into()?;
        Ok(FitAddon(Reflect::construct(&class, &js_sys::Array::new())?))
    }

    /// Sizes the terminal to its element (xterm.js then reports the new size to its
    /// `onResize` listeners).
    pub fn fit(&self) {
        if let Ok(fit) = Reflect::get(&self.0, &"fit".into())
            && let Ok(fit) = fit.dyn_into::<js_sys::Function>()
        {
            let _ = fit.call0(&self.0);
        }
    }
}

// Whether the scripts are loaded (or loading): pages share one load.
thread_local! {
    static LOADED: RefCell<Option<Rc<RefCell<LoadState>>>> = const { RefCell::new(None) };
}

#[derive(Default)]
struct LoadState {
    done: Option<Result<(), String>>,
    waiting: Vec<oneshot::Sender<Result<(), String>>>,
}

/// Adds `/vendor/xterm.js`, its addon and stylesheet to the page once; resolves when both
/// scripts have run. Errors: the files could not be loaded (a client built without npm).
pub async fn load() -> Result<(), String> {
    let (sender, receiver) = oneshot::channel();
    let start = LOADED.with(|loaded| {
        let mut loaded = loaded.borrow_mut();
        match &*loaded {
            Some(state) => {
                let mut state = state.borrow_mut();
                match &state.done {
                    Some(done) => {
                        let _ = sender.send(done.clone());
                    }
                    None => state.waiting.push(sender),
                }
                None
            }
            None => {
                let state = Rc::new(RefCell::new(LoadState {
                    done: None,
                    waiting: vec![sender],
                }));
                *loaded = Some(state.clone());
                Some(state)
            }
        }
    });
    if let Some(state) = start {
        start_loading(state);
    }
    receiver
        .await
        .unwrap_or_else(|_| Err("the terminal's scripts did not load".into()))
}

/// Loads the files in order (the addon after xterm.js) and tells everyone waiting.
fn start_loading(state: Rc<RefCell<LoadState>>) {
    leptos::task::spawn_local(async move {
        let outcome = async {
            add_stylesheet("/vendor/xterm.css")?;
            add_script("/vendor/xterm.js").await?;
            add_script("/vendor/addon-fit.js").await
        }
        .await;
        let waiting = {
            let mut state = state.borrow_mut();
            state.done = Some(outcome.clone());
            std::mem::take(&mut state.waiting)
        };
        for sender in waiting {
            let _ = sender.send(outcome.clone());
        }
    });
}

fn document() -> Result<web_sys::Document, String> {
    web_sys::window()
        .and_then(|window| window.document())
        .ok_or_else(|| "no document".to_owned())
}

fn add_stylesheet(href: &str) -> Result<(), String> {
    let document = document()?;
    let link = document.create_element("link").map_err(describe)?;
    link.set_attribute("rel", "stylesheet").map_err(describe)?;
    link.set_attribute("href", href).map_err(describe)?;
    document
        .head()
        .ok_or("no head")?
        .append_child(&link)
        .map_err(describe)?;
    Ok(())
}

async fn add_script(src: &str) -> Result<(), String> {
    let document = document()?;
    let script = document.create_element("script").map_err(describe)?;
    script.set_attribute("src", src).map_err(describe)?;
    let (sender, receiver) = oneshot::channel::<bool>();
    let sender = Rc::new(RefCell::new(Some(sender)));
    let settle = |ok: bool| {
        let sender = sender.clone();
        Closure::<dyn FnMut()>::new(move || {
            if let Some(sender) = sender.borrow_mut().take() {
                let _ = sender.send(ok);
            }
        })
    };
    let (loaded, failed) = (settle(true), settle(false));
    script
        .add_event_listener_with_callback("load", loaded.as_ref().unchecked_ref())
        .map_err(describe)?;
    script
        .add_event_listener_with_callback("error", failed.as_ref().unchecked_ref())
        .map_err(describe)?;
    document
        .head()
        .ok_or("no head")?
        .append_child(&script)
        .map_err(describe)?;
    let ok = receiver.await.unwrap_or(false);
    drop((loaded, failed));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{src} could not be loaded: this server's client was built without npm, so terminals cannot be shown"
        ))
    }
}

fn describe(error: JsValue) -> String {
    error
        .as_string()
        .or_else(|| {
            error
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
        })
        .unwrap_or_else(|| "a browser error".to_owned())
}

impl XTerm {
    /// Writes text (a piece of output as the API gives it) to the screen.
    pub fn put(&self, text: &str) {
        self.write_text(text);
    }

    /// Writes bytes exactly as the program wrote them.
    pub fn put_bytes(&self, bytes: &[u8]) {
        self.write_bytes(&Uint8Array::from(bytes));
    }
}

/// A terminal drawn in `parent`, sized to it, with its callbacks kept alive as long as it is.
pub struct Term {
    pub xterm: XTerm,
    pub fit: FitAddon,
    callbacks: Vec<Box<dyn std::any::Any>>,
}

impl Term {
    /// Draws a new terminal in `parent`; `input` (none: read-only) gets what the user types.
    pub fn open(
        parent: &web_sys::HtmlElement,
        input: Option<Box<dyn FnMut(String)>>,
    ) -> Result<Term, String> {
        let options = Object::new();
        let set = |key: &str, value: JsValue| Reflect::set(&options, &key.into(), &value).map(drop);
        set("cursorBlink", input.is_some().into()).map_err(describe)?;
        set("disableStdin", input.is_none().into()).map_err(describe)?;
        set("scrollback", 5000.into()).map_err(describe)?;
        set(
            "fontFamily",
            "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace".into(),
        )
        .map_err(describe)?;
        let xterm = XTerm::construct(&options).map_err(describe)?;
        let fit = FitAddon::construct().map_err(describe)?;
        xterm.load_addon(&fit.0);
        xterm.open(parent);
        let mut term = Term {
            xterm,
            fit,
            callbacks: Vec::new(),
        };
        if let Some(input) = input {
            let callback = Closure::<dyn FnMut(String)>::new(input);
            term.xterm.on_data(&callback);
            term.callbacks.push(Box::new(callback));
        }
        Ok(term)
    }

    /// Calls `resized(cols, rows)` whenever the terminal changes size.
    pub fn on_resize(&mut self, mut resized: impl FnMut(u16, u16) + 'static) {
        let callback = Closure::<dyn FnMut(JsValue)>::new(move |size: JsValue| {
            let read = |key: &str| {
                Reflect::get(&size, &key.into())
                    .ok()
                    .and_then(|value| value.as_f64())
                    .map_or(0, |value| value as u16)
            };
            resized(read("cols"), read("rows"));
        });
        self.xterm.on_resize(&callback);
        self.callbacks.push(Box::new(callback));
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.xterm.dispose();
    }
}
