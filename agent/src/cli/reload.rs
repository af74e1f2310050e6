//! SIGHUP reloads the token file (`kill -HUP`, `systemctl reload`): a new token works at once,
//! without a restart; a file that no longer reads keeps the tokens loaded before, and the log
//! says which happened.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{error, info, warn};

use crate::tokens::Tokens;

/// Catches SIGHUP from now on (so one sent while the agent still starts is not lost, nor kills
/// it); `None` when the handler cannot be installed.
pub fn catch_hangups() -> Option<Signal> {
    match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            warn!(%error, "cannot catch SIGHUP: reloading the token file needs a restart");
            None
        }
    }
}

/// Reloads `path` into `tokens` at every SIGHUP, for as long as the agent runs.
pub async fn reload_on_hangup(mut hangups: Signal, path: PathBuf, tokens: Option<Arc<Tokens>>) {
    while hangups.recv().await.is_some() {
        match &tokens {
            Some(tokens) => reload(&path, tokens),
            None => info!("SIGHUP: this agent has no token file to reload"),
        }
    }
}

/// Reads the token file again; keeps the tokens loaded before if it no longer reads.
fn reload(path: &std::path::Path, tokens: &Tokens) {
    let shown = path.display();
    match Tokens::load(path) {
        Ok(fresh) => {
            let count = tokens.replace_with(fresh);
            info!(file = %shown, tokens = ?tokens.names(), "reloaded {count} tokens");
        }
        Err(problem) => error!(
            file = %shown,
            kept = tokens.names().len(),
            "cannot reload the token file, keeping the tokens loaded before: {problem}"
        ),
    }
}
