//! Where a command reads from: the gateway's store (`--config` or
//! `--data-dir`) and passwords on standard input or the terminal.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::store::Store;

// `--config FILE` or `--data-dir DIR`: whose store a command opens (a
// plain comment: a doc comment here could become help text).
#[derive(Args)]
pub(super) struct StoreAt {
    /// The gateway's configuration file (its data_dir holds the store).
    #[arg(long, conflicts_with = "data_dir")]
    pub(super) config: Option<PathBuf>,
    /// The data directory directly.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl StoreAt {
    /// Opens the store (creating it if need be).
    pub(super) fn open(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.data_dir()?)?)
    }

    /// The data directory: `--data-dir`, or the one `--config` names.
    pub(super) fn data_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(match (&self.config, &self.data_dir) {
            (Some(c), _) => Config::load(c)?.gateway.data_dir,
            (None, Some(d)) => d.clone(),
            (None, None) => anyhow::bail!("give --config FILE or --data-dir DIR"),
        })
    }
}

/// The password on standard input: its first line, without the line end.
pub(super) fn read_stdin_password() -> anyhow::Result<String> {
    read_password_line(std::io::stdin().lock())
}

/// The first line of `r` without its line end (`\n` or `\r\n`); what
/// follows is not read (`printf 'pw\npw\n' |` gives `pw`, as a prompt
/// asking twice would).
fn read_password_line(mut r: impl BufRead) -> anyhow::Result<String> {
    let mut s = String::new();
    r.read_line(&mut s)?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(!s.is_empty(), "no password on standard input");
    Ok(s)
}

/// A new password: prompted twice without echo on a terminal, else the
/// first line of standard input.
pub(super) fn read_new_password() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        return read_stdin_password();
    }
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        echo(false);
        let mut s = String::new();
        let r = std::io::stdin().read_line(&mut s);
        echo(true);
        eprintln!();
        r?;
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    };
    let a = ask("password: ")?;
    let b = ask("again: ")?;
    anyhow::ensure!(a == b, "the passwords differ");
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::read_password_line;

    /// A piped `pw\npw\n` (the answer to a prompt that asks twice) is the
    /// password `pw`, not `pw\npw`.
    #[test]
    fn a_piped_password_is_its_first_line() {
        let one = |b: &[u8]| read_password_line(b).map_err(|e| e.to_string());
        assert_eq!(one(b"s3cret-pw\ns3cret-pw\n").unwrap(), "s3cret-pw");
        assert_eq!(one(b"s3cret-pw\r\nignored\r\n").unwrap(), "s3cret-pw");
        assert_eq!(one(b"s3cret-pw").unwrap(), "s3cret-pw");
        assert_eq!(one(b"with space \n").unwrap(), "with space ");
        assert!(one(b"").unwrap_err().contains("no password"));
        assert!(one(b"\nsecond\n").unwrap_err().contains("no password"));
    }
}
