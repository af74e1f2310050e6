//! Writing text to the system clipboard through `navigator.clipboard`, when the browser allows it.

use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

/// Why text could not be copied; the page then shows it for copying by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyError {
    /// The browser has no clipboard API here (an insecure origin, an old browser).
    Unavailable,
    /// The browser refused the write (no permission, the page not focused).
    Refused(String),
}

/// Writes `text` to the clipboard.
pub async fn copy_text(text: &str) -> Result<(), CopyError> {
    let window = web_sys::window().ok_or(CopyError::Unavailable)?;
    let clipboard = window.navigator().clipboard();
    // The getter is typed as always present, but browsers leave it undefined outside secure
    // contexts: calling a method on it would throw.
    if clipboard.is_undefined() || clipboard.is_null() {
        return Err(CopyError::Unavailable);
    }
    JsFuture::from(clipboard.write_text(text)).await.map(|_| ()).map_err(refusal)
}

fn refusal(error: JsValue) -> CopyError {
    let message = js_message(&error).unwrap_or_else(|| "the browser refused".to_owned());
    CopyError::Refused(message)
}

/// A thrown `DOMException`'s message (`Document is not focused.`), when it has one.
fn js_message(error: &JsValue) -> Option<String> {
    let message = web_sys::js_sys::Reflect::get(error, &JsValue::from_str("message"));
    message.ok().and_then(|message| message.as_string())
}
