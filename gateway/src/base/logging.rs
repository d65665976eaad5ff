//! Tracing setup for the `tgw` process (stderr, plain or JSON lines, the
//! `TGW_LOG` filter) and the runtime log-level change behind `PUT
//! /api/v1/log-level`: [`init`] installs the subscriber once,
//! [`log_level_handle`] hands the reload handle to the daemon.

use std::io::IsTerminal as _;
use std::sync::{Arc, OnceLock};

use tracing_subscriber::EnvFilter;

use crate::base::error::{Error, Result};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

type Reload = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;

/// Changes the log filter of the running process.
#[derive(Clone)]
pub struct LogLevelHandle {
    reload: Reload,
    current: String,
}

impl LogLevelHandle {
    /// The filter in force when tracing was initialised.
    pub fn current(&self) -> &str {
        &self.current
    }

    /// Replaces the filter (`EnvFilter` syntax, e.g. `debug,hyper=info`);
    /// an invalid filter is [`ErrorKind::Invalid`](crate::base::error::ErrorKind::Invalid)
    /// and leaves the one in force.
    pub fn set(&self, filter: &str) -> Result<()> {
        (self.reload)(filter)
    }
}

static LOG_LEVEL: OnceLock<LogLevelHandle> = OnceLock::new();

/// The handle that changes the log filter at run time, with the filter in
/// force; `None` before [`init`] (or when another subscriber was installed).
pub fn log_level_handle() -> Option<LogLevelHandle> {
    LOG_LEVEL.get().cloned()
}

/// Installs the process's subscriber: to stderr (coloured on a terminal),
/// filtered by `TGW_LOG` if set, else by `default`. Only the first call
/// takes effect.
pub fn init(default: &str, format: Format) {
    let filter = EnvFilter::try_from_env("TGW_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let current = filter.to_string();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    macro_rules! install {
        ($b:expr) => {{
            let b = $b.with_filter_reloading();
            let h = b.reload_handle();
            if b.try_init().is_ok() {
                let reload: Reload = Arc::new(move |s: &str| {
                    let f = EnvFilter::try_new(s).map_err(|e| Error::invalid(e.to_string()))?;
                    h.reload(f).map_err(|e| Error::internal(e.to_string()))
                });
                let _ = LOG_LEVEL.set(LogLevelHandle { reload, current });
            }
        }};
    }
    match format {
        Format::Plain => install!(b),
        Format::Json => install!(b.json()),
    }
}
