//! The open-file limit of the long-running commands (`tgw run`, `tgw demo`,
//! `tgw sim`): raised at start from the soft limit to the hard one (at most
//! [`CAP`]), as systemd advises for daemons that need many descriptors.
//!
//! Measured at 1,000 cameras and 200 horns (docs/health.md, "Connections
//! and file descriptors"): about 150 open files steady, about 570 while a
//! broadcast plays on all 200 horns, and up to 854 in the first minute
//! after a start with 1,000 cameras to inventory. A hand-started `tgw run` inherits a shell's soft limit of
//! 1,024 on most systems; at that margin one more village's cameras turn
//! into `EMFILE` errors, which the poller would report as cameras offline.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The highest soft limit asked for (the service unit's `LimitNOFILE`).
pub const CAP: u64 = 65_536;

/// Below this, after raising, a warning says how to raise the hard limit.
pub const LOW: u64 = 4_096;

/// The soft limit to set, given the current `soft` and `hard` limits
/// (`None`: unlimited), or `None` when there is nothing to raise.
pub fn wanted(soft: Option<u64>, hard: Option<u64>) -> Option<u64> {
    let soft = soft?;
    let target = hard.map_or(CAP, |h| h.min(CAP));
    (target > soft).then_some(target)
}

/// What [`raise`] did: the soft limit before and after (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The soft limit found.
    pub before: Option<u64>,
    /// The soft limit in force now.
    pub now: Option<u64>,
}

/// Raises this process's soft open-file limit as [`wanted`] says. Never
/// fails: a refused `setrlimit` leaves the limit as it was.
pub fn raise() -> Raised {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let Some(to) = wanted(current, maximum) else {
        return Raised {
            before: current,
            now: current,
        };
    };
    let set = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(to),
            maximum,
        },
    );
    Raised {
        before: current,
        now: if set.is_ok() { Some(to) } else { current },
    }
}

/// [`raise`], logged: info when raised, a warning when the limit stays
/// under [`LOW`].
pub fn raise_logged() -> Raised {
    let r = raise();
    if r.now != r.before {
        tracing::info!(from = ?r.before, to = ?r.now, "open-file limit raised");
    }
    if let Some(n) = r.now
        && n < LOW
    {
        tracing::warn!(
            limit = n,
            "open-file limit is low: 1,000 cameras and 200 horns need up to about 900 open files; raise the hard limit (LimitNOFILE= in the service unit, or ulimit -Hn)"
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_goes_up_to_the_hard_one_capped() {
        assert_eq!(wanted(Some(1_024), Some(524_288)), Some(CAP));
        assert_eq!(wanted(Some(1_024), Some(4_096)), Some(4_096));
        assert_eq!(wanted(Some(1_024), None), Some(CAP));
    }

    #[test]
    fn a_limit_already_high_enough_or_unlimited_is_left_alone() {
        assert_eq!(wanted(Some(1_024), Some(1_024)), None);
        assert_eq!(wanted(Some(CAP), Some(1 << 20)), None);
        assert_eq!(wanted(Some(100_000), Some(1 << 20)), None, "never lowered");
        assert_eq!(wanted(None, None), None);
    }

    /// In this process: a lowered soft limit is raised again (to the hard
    /// limit, at most CAP), and the limit found is restored after.
    #[test]
    fn raise_lifts_a_low_soft_limit() {
        let found = getrlimit(Resource::Nofile);
        let hard = found.maximum;
        let low = 256.min(hard.unwrap_or(u64::MAX));
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(low),
                maximum: hard,
            },
        )
        .unwrap();
        let r = raise();
        let now = getrlimit(Resource::Nofile).current;
        setrlimit(Resource::Nofile, found).unwrap();
        assert_eq!(r.before, Some(low));
        let expect = hard.map_or(CAP, |h| h.min(CAP));
        assert_eq!((r.now, now), (Some(expect), Some(expect)), "{r:?}");
    }
}
