//! The Prometheus face of the agent: a blackbox_exporter-compatible `/probe` whose series say
//! why, and the agent's own `/metrics`. Above the hub, below the server (which routes to it):
//!
//! - [`modules`]: the probe modules of `--probe-config` (blackbox_exporter's module file read
//!   for tcp, tls and http).
//! - [`probe`]: one probe: a module and a target become a check, run here or at one vantage
//!   point, within the scrape's timeout.
//! - [`exposition`]: a finished probe as series (pure).
//! - [`metrics`]: the agent's own counters and gauges.
//!
//! [`Exporter`] holds the modules (reloaded from their file on `SIGHUP` and on `POST
//! /-/reload`) and the counters; it lives in [`AppState`].

pub mod exposition;
pub mod metrics;
pub mod modules;
pub mod probe;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tracing::{info, warn};

use crate::app::AppState;
pub use metrics::{AgentMetrics, Via};
pub use modules::{Loaded, Module, ModuleFileError, Modules};

/// The modules and counters of the agent's Prometheus endpoints; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Exporter {
    /// The modules probes may name (never held across an await).
    modules: Arc<RwLock<Modules>>,
    /// `--probe-config`, read again on reload; `None`: the built-in modules.
    file: Option<PathBuf>,
    /// The agent's own counters.
    pub metrics: AgentMetrics,
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The modules now loaded.
    pub modules: Vec<String>,
    /// The modules skipped, each with why.
    pub skipped: Vec<String>,
}

/// Why a reload did nothing; the modules in use stay.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this agent has no --probe-config to reload: it uses its built-in modules")]
    NoFile,
    #[error("{0}; the modules in use stay")]
    File(#[from] ModuleFileError),
}

impl Exporter {
    /// An exporter with the modules of `file`; logs each module it skips.
    pub fn from_file(file: &Path) -> Result<Exporter, ModuleFileError> {
        let loaded = Modules::load(file)?;
        warn_skipped(&loaded);
        let modules = Arc::new(RwLock::new(loaded.modules));
        Ok(Exporter { modules, file: Some(file.to_path_buf()), metrics: AgentMetrics::default() })
    }

    /// The module named `name`, or the names there are.
    pub fn module(&self, name: &str) -> Result<Module, String> {
        let modules = self.modules.read().unwrap_or_else(|e| e.into_inner());
        modules.get(name).cloned().ok_or_else(|| modules.names().join(", "))
    }

    /// Reads the module file again; on an error the modules in use stay.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let file = self.file.as_deref().ok_or(ReloadError::NoFile)?;
        let loaded = Modules::load(file)?;
        warn_skipped(&loaded);
        let reloaded = Reloaded {
            modules: loaded.modules.names().into_iter().map(String::from).collect(),
            skipped: loaded.skipped.iter().map(|s| format!("{}: {}", s.module, s.reason)).collect(),
        };
        *self.modules.write().unwrap_or_else(|e| e.into_inner()) = loaded.modules;
        info!(modules = ?reloaded.modules, "probe modules reloaded");
        Ok(reloaded)
    }
}

fn warn_skipped(loaded: &Loaded) {
    for skipped in &loaded.skipped {
        warn!(module = %skipped.module, reason = %skipped.reason, "probe module skipped");
    }
}

/// Reloads the probe modules on every `SIGHUP` until the agent shuts down (beside any other
/// listener of the signal: each gets it).
pub fn reload_on_hangup(state: &AppState) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP: the probe modules reload only on POST /-/reload");
        return;
    };
    let (exporter, shutdown) = (state.exporter.clone(), state.shutdown.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hangups.recv() => {
                    if let Err(error) = exporter.reload() {
                        warn!(%error, "SIGHUP: the probe modules were not reloaded");
                    }
                }
                () = shutdown.cancelled() => return,
            }
        }
    });
}
