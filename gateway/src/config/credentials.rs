//! `[[credential_groups]]`: one camera login for many cameras.

use std::fmt;

use ipnet::Ipv4Net;
use serde::Deserialize;

use super::values::{de_cidrs, de_mac_prefixes, env_override};
use super::{ConfigError, Ident};

/// `[[credential_groups]]`: one login for many cameras. The password is
/// copied into the database encrypted; prefer `password_env` over `password`
/// so it is not kept in this file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialGroupConfig {
    /// Unique name, e.g. `dongcun-2023-batch`. Required.
    pub name: Ident,
    /// Username. Required.
    pub username: String,
    /// Password in clear. One of `password` / `password_env` is required.
    #[serde(default)]
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Cameras whose address is in one of these networks. Default: none.
    #[serde(default, deserialize_with = "de_cidrs")]
    pub subnets: Vec<Ipv4Net>,
    /// Cameras whose MAC starts with one of these prefixes (`44:19:b6`). Default: none.
    #[serde(default, deserialize_with = "de_mac_prefixes")]
    pub mac_prefixes: Vec<String>,
    /// Higher wins when several groups match. Default: `0`.
    #[serde(default)]
    pub priority: i32,
}

impl fmt::Debug for CredentialGroupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialGroupConfig")
            .field("name", &self.name)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("subnets", &self.subnets)
            .field("mac_prefixes", &self.mac_prefixes)
            .field("priority", &self.priority)
            .finish()
    }
}

impl CredentialGroupConfig {
    /// Resolves the password from the file or the environment.
    pub fn resolve_password(&self) -> Result<String, ConfigError> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        let var = self.password_env.as_deref().unwrap_or_default();
        if let Some(v) = env_override(var) {
            return Ok(v);
        }
        std::env::var(var).map_err(|_| {
            ConfigError(format!(
                "credential_groups `{}`: environment variable `{var}` (password_env) is not set",
                self.name
            ))
        })
    }
}
