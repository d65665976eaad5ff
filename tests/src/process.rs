//! Child processes that end with their test: killed and reaped when the
//! test returns or panics, so a failed assertion never leaves a `tgw run`,
//! a simulator or a peer running (and holding its ports) after the test.

// Waiting for a child to exit needs real time.
#![allow(clippy::disallowed_methods)]

use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and waited for when dropped. It derefs
/// to the [`Child`], so `id`, `try_wait`, `kill` and `wait` work as usual.
pub struct KillOnDrop(Child);

impl KillOnDrop {
    /// Guards `child`.
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(child)
    }

    /// Kills it now and waits for it to exit (what dropping it does).
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Sends SIGTERM and waits for it to exit (a clean shutdown), failing
    /// the test if it takes longer than `limit`.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "process {} did not exit within {limit:?} of SIGTERM",
                self.0.id()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Child::wait_with_output`] for a guarded child: reads its piped
    /// stdout and stderr to the end, then waits for it.
    pub fn wait_with_output(mut self) -> std::io::Result<Output> {
        let err = self.0.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut out) = self.0.stdout.take() {
            out.read_to_end(&mut stdout)?;
        }
        let stderr = err
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        let status = self.0.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Deref for KillOnDrop {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `Command::spawn` with its child in a [`KillOnDrop`].
pub trait SpawnKilled {
    /// Spawns the command (panicking with `what` and the reason if it
    /// cannot start); the child dies when the guard is dropped.
    fn spawn_killed(&mut self, what: &str) -> KillOnDrop;
}

impl SpawnKilled for Command {
    fn spawn_killed(&mut self, what: &str) -> KillOnDrop {
        match self.spawn() {
            Ok(child) => KillOnDrop(child),
            Err(e) => panic!("spawn {what}: {e}"),
        }
    }
}
