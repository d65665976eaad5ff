//! `tgw user add|token|list`: dashboard and API users in a gateway's store.

use std::process::ExitCode;

use clap::Subcommand;

use super::input::{StoreAt, read_new_password};
use crate::store::secrets::Password;

#[derive(Subcommand)]
pub(super) enum UserCmd {
    /// Create a user, or reset an existing user's role and password. The
    /// password is read from standard input (prompted for on a terminal).
    Add {
        #[command(flatten)]
        at: StoreAt,
        /// User name (1-32 of A-Z a-z 0-9 . _ -).
        name: String,
        /// viewer, operator, technician or admin.
        #[arg(long)]
        role: crate::auth::Role,
    },
    /// Issue an API token for a user; it is printed once and stored hashed.
    Token {
        #[command(flatten)]
        at: StoreAt,
        /// User name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List users.
    List {
        #[command(flatten)]
        at: StoreAt,
    },
}

impl clap::ValueEnum for crate::auth::Role {
    fn value_variants<'a>() -> &'a [Self] {
        use crate::auth::Role::*;
        &[Viewer, Operator, Technician, Admin]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Runs `tgw user …`.
pub(super) fn user_cmd(cmd: UserCmd) -> anyhow::Result<ExitCode> {
    use crate::auth::{HashCost, Users};
    match cmd {
        UserCmd::Add { at, name, role } => {
            crate::auth::check_name(&name)?;
            let users = Users::new(at.open()?)?;
            let pw = read_new_password()?;
            users.upsert(&name, role, &Password::new(pw), HashCost::DEFAULT)?;
            println!("{name}: {}", role.as_str());
        }
        UserCmd::Token { at, name, label } => {
            let users = Users::new(at.open()?)?;
            println!("{}", users.create_token(&name, &label)?);
        }
        UserCmd::List { at } => {
            for u in Users::new(at.open()?)?.users()? {
                println!(
                    "{}\t{}{}",
                    u.name,
                    u.role.as_str(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
