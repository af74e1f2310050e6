//! Logs (via `tracing`, with timestamps, to stderr) and the process's shutdown signal.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Starts logging; `RUST_LOG` overrides `default_filter`.
pub fn init(default_filter: &str) {
    let filter = filter_from(std::env::var("RUST_LOG").ok().as_deref(), default_filter);
    // Colour only on a terminal: a log file or the journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .finish()
        .with(filter)
        .try_init();
}

/// The log filter: `RUST_LOG`'s `target=level` list (`whyrefused=debug,hyper=info`, or a bare
/// level) when it is set and parses, else `default_filter`. Targets and levels only, no span or
/// field directives: that needs no regex engine in the binary.
fn filter_from(rust_log: Option<&str>, default_filter: &str) -> Targets {
    rust_log
        .filter(|directives| !directives.trim().is_empty())
        .and_then(|directives| directives.parse().ok())
        .or_else(|| default_filter.parse().ok())
        .unwrap_or_default()
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first awaited: a signal that comes in between (while the agent still
/// starts, after it printed its address) is kept for the future, rather than killing the process
/// with no shutdown (before the handler exists) or being lost. Call it inside the runtime, as
/// early as possible.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        tokio::select! {
            () = delivery(interrupt) => {}
            () = delivery(terminate) => {}
        }
    }
}

/// The next delivery of a signal whose handler was installed; never, if it could not be.
async fn delivery(handler: std::io::Result<Signal>) {
    match handler {
        Ok(mut handler) => {
            handler.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn rust_log_overrides_the_default_and_a_malformed_or_empty_one_is_ignored() {
        let debug = filter_from(Some("whyrefused=debug,hyper=info"), "whyrefused=warn");
        assert!(debug.would_enable("whyrefused::server", &Level::DEBUG));
        assert!(!debug.would_enable("hyper::proto", &Level::DEBUG));
        for ignored in [None, Some(""), Some("  "), Some("whyrefused=loud")] {
            let filter = filter_from(ignored, "whyrefused=warn");
            assert!(filter.would_enable("whyrefused::cli", &Level::WARN), "{ignored:?}");
            assert!(!filter.would_enable("whyrefused::cli", &Level::INFO), "{ignored:?}");
            assert!(!filter.would_enable("rustls", &Level::ERROR), "{ignored:?}");
        }
    }
}
