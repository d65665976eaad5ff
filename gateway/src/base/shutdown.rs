//! Stopping on SIGINT (Ctrl-C) or SIGTERM, reloading on SIGHUP: the one
//! place that listens for the signals. `tgw run`, `tgw demo`, `tgw sim` and `tgw speaker test`
//! stop on them; everything else stops on a [`CancellationToken`].

use tokio_util::sync::CancellationToken;

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// A token cancelled when SIGINT or SIGTERM arrives (then "shutting down"
/// is logged). Must be called inside a tokio runtime.
pub fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        // Cancel before anything that could fail: logging once panicked on
        // a closed stderr here, and the signal was lost with this task.
        t.cancel();
        tracing::info!("shutting down");
    });
    token
}

/// Calls `on_hup` for every SIGHUP until `stop` is cancelled (`tgw run`:
/// reload the configuration). Must be called inside a tokio runtime; if the
/// handler cannot be installed, SIGHUP keeps its default and that is logged.
pub fn on_sighup(stop: CancellationToken, on_hup: impl Fn() + Send + 'static) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with cmd/reload instead");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                s = hup.recv() => match s {
                    Some(()) => on_hup(),
                    None => break,
                },
            }
        }
    });
}
