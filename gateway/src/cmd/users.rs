//! `tgw user add|token|list`: dashboard and API users in a gateway's store,
//! and a user's API tokens (`tgw user token NAME --list | --revoke ID`).

use std::process::ExitCode;

use clap::Subcommand;

use super::output::{emit, outln};

use super::input::{StoreAt, read_new_password};
use crate::store::secrets::Password;

#[derive(Subcommand)]
pub(super) enum UserCmd {
    /// Create a user, or reset an existing user's role and password (which
    /// ends its sessions and revokes its API tokens). The password is
    /// prompted for twice on a terminal, else read from the first line of
    /// standard input.
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
    /// With --list: the user's tokens (id, label, created, last used);
    /// with --revoke ID: revoke one.
    Token {
        #[command(flatten)]
        at: StoreAt,
        /// User name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
        /// List the user's tokens instead (never their secrets).
        #[arg(long, conflicts_with = "revoke")]
        list: bool,
        /// Revoke the token with this id instead.
        #[arg(long, value_name = "ID")]
        revoke: Option<i64>,
        /// Write the new token to DATA_DIR/cli-token (owner-only) instead of
        /// printing it; `tgw status --config FILE` reads it from there.
        #[arg(long, conflicts_with_all = ["list", "revoke"])]
        save: bool,
        /// With --list: print JSON.
        #[arg(long, requires = "list")]
        json: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        at: StoreAt,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    let mut o = String::new();
    use crate::auth::{HashCost, Users};
    match cmd {
        UserCmd::Add { at, name, role } => {
            crate::auth::check_name(&name)?;
            let users = Users::new(at.open()?)?;
            let pw = read_new_password()?;
            users.upsert(&name, role, &Password::new(pw), HashCost::DEFAULT)?;
            outln!(o, "{name}: {}", role.as_str());
        }
        UserCmd::Token {
            at,
            name,
            label,
            list,
            revoke,
            save,
            json,
        } => {
            let users = Users::new(at.open()?)?;
            if list && json {
                let v: Vec<serde_json::Value> = users
                    .tokens(&name)?
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "label": t.label,
                            "created_at": t.created_at, "last_used_at": t.last_used_at,
                        })
                    })
                    .collect();
                outln!(o, "{}", serde_json::to_string_pretty(&v)?);
            } else if list {
                for t in users.tokens(&name)? {
                    let used = t.last_used_at.as_deref().unwrap_or("never used");
                    outln!(o, "{}\t{}\t{}\t{used}", t.id, t.label, t.created_at);
                }
            } else if let Some(id) = revoke {
                let Some(t) = users.revoke_token(&name, id)? else {
                    anyhow::bail!("user `{name}` has no token {id}");
                };
                users.audit(crate::auth::NewAudit {
                    actor: "-",
                    source: "cli",
                    action: "user.token.revoke",
                    target: Some(&name),
                    after: Some(serde_json::json!({"id": t.id, "label": t.label})),
                    outcome: "ok",
                    ..Default::default()
                })?;
                outln!(o, "revoked token {id} ({}) of {name}", t.label);
            } else if save {
                let path = at.data_dir()?.join(super::status::TOKEN_FILE);
                let token = users.create_token(&name, &label)?;
                super::status::save_token(&path, &token)?;
                outln!(o, "token for {name} saved to {}", path.display());
            } else {
                outln!(o, "{}", users.create_token(&name, &label)?);
            }
        }
        UserCmd::List { at, json } if json => {
            let v: Vec<serde_json::Value> = Users::new(at.open()?)?
                .users()?
                .iter()
                .map(|u| serde_json::json!({"name": u.name, "role": u.role.as_str(), "disabled": u.disabled}))
                .collect();
            outln!(o, "{}", serde_json::to_string_pretty(&v)?);
        }
        UserCmd::List { at, .. } => {
            for u in Users::new(at.open()?)?.users()? {
                outln!(
                    o,
                    "{}\t{}{}",
                    u.name,
                    u.role.as_str(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
