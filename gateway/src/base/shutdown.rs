//! Stopping on SIGINT (Ctrl-C) or SIGTERM: the one place that listens for
//! the signals. `tgw run`, `tgw demo`, `tgw sim` and `tgw speaker test`
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

/// A token cancelled (after logging "shutting down") when SIGINT or SIGTERM
/// arrives. Must be called inside a tokio runtime.
pub fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}
