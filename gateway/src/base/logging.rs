//! Tracing setup for the `tgw` process (stderr, plain or JSON lines, the
//! `TGW_LOG` filter) and the runtime log-level change behind `PUT
//! /api/v1/log-level`: [`init`] installs the subscriber once,
//! [`log_level_handle`] hands the reload handle to the daemon.
//!
//! Logging never stops the process: stderr may be a pipe whose reader has
//! gone (`tgw demo 2>&1 | head -1`, a log collector that died). Writes go
//! through [`Lossy`], which drops what cannot be written, and [`say`] is the
//! `eprintln!` of the daemon paths that does not panic.

use std::io::{self, IsTerminal as _, Write};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Log writes dropped because stderr refused them (closed pipe, bad fd).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many log writes were dropped because stderr refused them.
pub fn dropped_writes() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A writer that never fails: an error from the inner writer (EPIPE from a
/// closed pipe, EBADF from a closed descriptor, ENOSPC, …) drops the bytes
/// and reports them written, so a dead log reader cannot make a logging
/// call fail — or panic, as `eprintln!` and tracing-subscriber's own error
/// report do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lossy<W>(pub W);

impl<W: Write> Write for Lossy<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Ok(0) if !buf.is_empty() => break,
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        DROPPED.fetch_add(1, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// The log writer: stderr, through [`Lossy`].
pub fn lossy_stderr() -> Lossy<io::Stderr> {
    Lossy(io::stderr())
}

/// Writes one line to stderr; never fails and never panics (unlike
/// `eprintln!`, which panics when stderr is a closed pipe). For the banner
/// and progress lines of `tgw demo` and the final error of `tgw`.
pub fn say(args: std::fmt::Arguments<'_>) {
    let mut w = lossy_stderr();
    let _ = w.write_fmt(args);
    let _ = w.write_all(b"\n");
}

/// Installs the process's subscriber: to stderr (coloured on a terminal),
/// filtered by `TGW_LOG` if set, else by `default`. Only the first call
/// takes effect.
pub fn init(default: &str, format: Format) {
    let filter = EnvFilter::try_from_env("TGW_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let current = filter.to_string();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(lossy_stderr)
        // Its report of a failed write is an `eprintln!`, which panics on
        // a closed stderr; `Lossy` never fails, and this keeps it quiet.
        .log_internal_errors(false)
        .with_ansi(io::stderr().is_terminal());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader is gone.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(9)) // EBADF
        }
    }

    #[test]
    fn lossy_writer_swallows_epipe_and_ebadf() {
        let before = dropped_writes();
        let mut w = Lossy(ClosedPipe);
        assert!(w.write_all(b"a log line\n").is_ok());
        assert!(writeln!(w, "another {}", 2).is_ok());
        assert!(w.flush().is_ok());
        assert!(dropped_writes() >= before + 2);
    }

    #[test]
    fn lossy_writer_passes_bytes_through() {
        let mut w = Lossy(Vec::new());
        w.write_all(b"kept").unwrap();
        assert_eq!(w.0, b"kept");
    }

    #[test]
    fn events_to_a_closed_pipe_do_not_panic() {
        let sub = tracing_subscriber::fmt()
            .with_writer(|| Lossy(ClosedPipe))
            .log_internal_errors(false)
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!(n = 1, "nobody reads this");
            tracing::warn!("nor this");
        });
    }
}
