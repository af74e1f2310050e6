//! The page (html, js, wasm, css), built by `build.rs` and carried inside the binary, so one file
//! is all a remote host needs.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::routing::get;

include!(concat!(env!("OUT_DIR"), "/page_assets.rs"));

/// Routes serving every file of the built page at its path.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    PAGE_ASSETS.iter().fold(Router::new(), |router, &(path, content_type, bytes)| {
        router.route(
            path,
            get(move || async move {
                ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")], bytes)
            }),
        )
    })
}
