//! Progress on stderr for long CLI work (`tgw discover`, `tgw backup`,
//! `tgw restore`): drawn only when stderr is a terminal, the run is not
//! `--json` and `TERM` is not `dumb`. In pipes, files, `--json` runs and
//! under CI nothing is drawn, so no escape code reaches a script's output
//! (tests/tests/cli_pipe.rs `no_progress_codes_in_pipes_or_json`).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress may be drawn for a run with `json`.
pub(super) fn enabled(json: bool) -> bool {
    !json && std::io::stderr().is_terminal() && std::env::var("TERM").as_deref() != Ok("dumb")
}

/// A spinner on stderr with `template` (indicatif syntax), ticking; a
/// hidden one (same API, draws nothing) unless [`enabled`].
pub(super) fn spinner(template: &str, json: bool) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !enabled(json) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Runs `work` under a spinner saying `what` (cleared when it ends).
pub(super) fn during<T>(what: &str, json: bool, work: impl FnOnce() -> T) -> T {
    let bar = spinner("{spinner} {msg} · {elapsed}", json);
    bar.set_message(what.to_string());
    let out = work();
    bar.finish_and_clear();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--json` never draws, whatever stderr is; a hidden bar takes the
    /// same calls (the test runner's stderr is not a terminal either).
    #[test]
    fn json_or_no_terminal_draws_nothing() {
        assert!(!enabled(true));
        let bar = spinner("{spinner} {pos}/{len}", true);
        assert!(bar.is_hidden());
        bar.set_length(10);
        bar.inc(3);
        assert_eq!(bar.position(), 3);
        assert_eq!(during("x", true, || 7), 7);
    }
}
