//! Logs (via `tracing`, with timestamps, to stderr) and the process's shutdown signal.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// Starts logging; `RUST_LOG` overrides `default_filter`.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colour only on a terminal: a log file or the journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
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
