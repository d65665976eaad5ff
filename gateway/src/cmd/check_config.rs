//! `tgw check-config`: a configuration file checked by the daemon's own
//! strict parser; exit 2 with the key and line of what is wrong.

use std::path::Path;
use std::process::ExitCode;

use super::output::{emit, outln};

use crate::config::Config;

/// Prints a one-line summary (exit 0) or the error (exit 2).
pub(super) fn check_config(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(c) => {
            let mut o = String::new();
            outln!(
                o,
                "{}: ok (site {}, {} villages, {} credential groups)",
                file.display(),
                c.gateway.site,
                c.township.villages.len(),
                c.credential_groups.len()
            );
            match emit(&o) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
