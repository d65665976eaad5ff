//! `[gb28181]`: the GB/T 28181 uplink to county/city video platforms
//! (`docs/gb28181.md`). The key names are the issue's interface.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::ConfigError;
use super::values::env_override;
pub use device_drivers::gb28181::manscdp::Charset;

/// `[gb28181]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gb28181Section {
    /// Our 20-digit id (type 200: a platform). Required.
    pub id: String,
    /// The township's civil code, 6 or 8 digits (6 are padded with `00`). Required.
    pub civil_code: String,
    /// SIP over UDP, and inbound SIP over TCP on the same address (the port
    /// UDP got when 0). Default `0.0.0.0:5060`; port 0 takes any free port.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address SDP answers and Contact carry when behind NAT. Default:
    /// the local address the platform's packets arrive on.
    #[serde(default)]
    pub public_address: Option<IpAddr>,
    /// Catalog items per MESSAGE of a paged answer, 1..=100. Default 20.
    #[serde(default = "default_page")]
    pub catalog_page_size: usize,
    /// The upper platforms to register to. Default: none.
    #[serde(default)]
    pub platforms: Vec<GbPlatform>,
    /// Media: most live relays at once (486 beyond). 1-1024, default 32.
    #[serde(default)]
    pub max_relays: Option<usize>,
    /// Media: lowest local RTP port. Default 30000.
    #[serde(default)]
    pub rtp_port_min: Option<u16>,
    /// Media: highest local RTP port. Default 30999.
    #[serde(default)]
    pub rtp_port_max: Option<u16>,
    /// Media: seconds to wait for the ACK / the platform's connection. 1-300, default 10.
    #[serde(default)]
    pub media_setup_timeout_secs: Option<u64>,
    /// Media: seconds without a camera frame before a relay ends. 1-300, default 10.
    #[serde(default)]
    pub camera_timeout_secs: Option<u64>,
    /// 校时: the platforms' clock (the `Date` of each 200 OK to REGISTER)
    /// becomes the reference the camera clock checks measure drift against,
    /// instead of our own clock. Default false.
    #[serde(default)]
    pub time_source: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5060))
}

fn default_page() -> usize {
    20
}

/// SIP transport to a platform.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP (default).
    #[default]
    Udp,
    /// TCP: one outbound connection, made again with backoff when it drops.
    Tcp,
}

/// `[[gb28181.platforms]]`: one upper platform.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GbPlatform {
    /// A short name for logs, status and the API. Required, unique.
    pub name: String,
    /// The platform's 20-digit SIP id. Required.
    pub server_id: String,
    /// The platform's SIP domain (usually 10 digits). Required.
    pub domain: String,
    /// The platform's SIP address, `HOST:PORT`. Required.
    pub address: SocketAddr,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport: Transport,
    /// The registration password (or `password_env`). One of the two is required.
    #[serde(default)]
    pub password: Option<String>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Keepalive MESSAGE interval, 5..=3600 s. Default 60.
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u32,
    /// Requested registration expiry, 60..=86400 s. Default 3600.
    #[serde(default = "default_expires")]
    pub register_expires_secs: u32,
    /// MANSCDP body charset: `gb2312` (default) or `utf-8`.
    #[serde(default)]
    pub charset: Charset,
}

impl std::fmt::Debug for GbPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbPlatform")
            .field("name", &self.name)
            .field("server_id", &self.server_id)
            .field("domain", &self.domain)
            .field("address", &self.address)
            .field("transport", &self.transport)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("keepalive_secs", &self.keepalive_secs)
            .field("register_expires_secs", &self.register_expires_secs)
            .field("charset", &self.charset)
            .finish()
    }
}

fn default_keepalive() -> u32 {
    60
}

fn default_expires() -> u32 {
    3600
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

impl Gb28181Section {
    /// The media keys of this table (`config/gb28181_media.rs`), defaults filled in.
    pub fn media(&self) -> super::gb28181_media::Gb28181Media {
        let d = super::gb28181_media::Gb28181Media::default();
        super::gb28181_media::Gb28181Media {
            max_relays: self.max_relays.unwrap_or(d.max_relays),
            public_address: self.public_address,
            rtp_port_min: self.rtp_port_min.unwrap_or(d.rtp_port_min),
            rtp_port_max: self.rtp_port_max.unwrap_or(d.rtp_port_max),
            media_setup_timeout_secs: self
                .media_setup_timeout_secs
                .unwrap_or(d.media_setup_timeout_secs),
            camera_timeout_secs: self.camera_timeout_secs.unwrap_or(d.camera_timeout_secs),
        }
    }

    /// The civil code as 8 digits.
    pub fn civil_code8(&self) -> String {
        format!("{:0<8}", self.civil_code)
    }

    /// Checks every key; errors name it (`gb28181.platforms[0].server_id`).
    pub(super) fn validate(
        &self,
        at: &dyn Fn(&str, &str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        if !digits(&self.id, 20) {
            return Err(at("gb28181.id", "id", "must be 20 digits".into()));
        }
        if let Err(e) = self.media().check() {
            let key = e
                .split(':')
                .next()
                .and_then(|k| k.strip_prefix("gb28181."))
                .and_then(|k| k.split('/').next())
                .unwrap_or("max_relays")
                .to_string();
            return Err(at(&format!("gb28181.{key}"), &key, e));
        }
        if !(digits(&self.civil_code, 6) || digits(&self.civil_code, 8)) {
            return Err(at(
                "gb28181.civil_code",
                "civil_code",
                "must be 6 or 8 digits".into(),
            ));
        }
        if !(1..=100).contains(&self.catalog_page_size) {
            return Err(at(
                "gb28181.catalog_page_size",
                "catalog_page_size",
                "must be between 1 and 100".into(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in self.platforms.iter().enumerate() {
            let key = |k: &str| format!("gb28181.platforms[{i}].{k}");
            let near = format!("\"{}\"", p.name);
            if p.name.is_empty() || !names.insert(p.name.clone()) {
                return Err(at(
                    &key("name"),
                    &near,
                    format!("platform name `{}` is empty or used twice", p.name),
                ));
            }
            if !digits(&p.server_id, 20) {
                return Err(at(
                    &key("server_id"),
                    "server_id",
                    "must be 20 digits".into(),
                ));
            }
            if p.domain.is_empty()
                || !p
                    .domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return Err(at(
                    &key("domain"),
                    "domain",
                    "must be a SIP domain (digits, letters, dots)".into(),
                ));
            }
            match (&p.password, &p.password_env) {
                (Some(_), Some(_)) => {
                    return Err(at(
                        &key("password"),
                        &near,
                        "give either `password` or `password_env`, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(at(
                        &key("password"),
                        &near,
                        "a `password` or `password_env` is required".into(),
                    ));
                }
                _ => {}
            }
            if !(5..=3600).contains(&p.keepalive_secs) {
                return Err(at(
                    &key("keepalive_secs"),
                    "keepalive_secs",
                    "must be between 5 and 3600".into(),
                ));
            }
            if !(60..=86_400).contains(&p.register_expires_secs) {
                return Err(at(
                    &key("register_expires_secs"),
                    "register_expires_secs",
                    "must be between 60 and 86400".into(),
                ));
            }
        }
        Ok(())
    }
}

impl GbPlatform {
    /// The password, from `password` or the `password_env` variable.
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
                "gb28181.platforms `{}`: environment variable `{var}` (password_env) is not set",
                self.name
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[gateway]\nsite = \"qingshan\"\ndata_dir = \"/tmp/x\"\n[township]\ncode = \"qingshan\"\nname = \"T\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}{extra}"), "t.toml").map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[gb28181]
id = "34020000002000000099"
civil_code = "340200"
listen = "127.0.0.1:0"

[[gb28181.platforms]]
name = "county"
server_id = "34020000002000000001"
domain = "3402000000"
address = "127.0.0.1:5060"
transport = "udp"
password = "12345678"
keepalive_secs = 5
charset = "utf-8"
"#;

    /// Bad values name their key; the password never shows in Debug.
    #[test]
    fn errors_name_the_key() {
        let e = parse(&GOOD.replace("\"34020000002000000001\"", "\"123\"")).unwrap_err();
        assert!(e.contains("gb28181.platforms[0].server_id"), "{e}");
        let e = parse(&GOOD.replace("keepalive_secs = 5", "keepalive_secs = 4")).unwrap_err();
        assert!(e.contains("gb28181.platforms[0].keepalive_secs"), "{e}");
        let e =
            parse(&GOOD.replace("civil_code = \"340200\"", "civil_code = \"3402\"")).unwrap_err();
        assert!(e.contains("gb28181.civil_code"), "{e}");
        let e = parse(&GOOD.replace("password = \"12345678\"", "")).unwrap_err();
        assert!(e.contains("password"), "{e}");
        let e = parse(&GOOD.replace("transport = \"udp\"", "transport = \"sctp\"")).unwrap_err();
        assert!(e.contains("transport"), "{e}");
        let tcp = parse(&GOOD.replace("transport = \"udp\"", "transport = \"tcp\"")).unwrap();
        assert_eq!(
            tcp.gb28181.unwrap().platforms[0].transport,
            super::Transport::Tcp
        );
        let e = parse(&GOOD.replace("charset = \"utf-8\"", "charset = \"latin1\"")).unwrap_err();
        assert!(e.contains("charset"), "{e}");
        let e = parse(&format!("{GOOD}\nbogus = 1\n")).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let c = parse(GOOD).unwrap();
        let g = c.gb28181.unwrap();
        assert_eq!(g.civil_code8(), "34020000");
        assert_eq!(g.platforms[0].register_expires_secs, 3600);
        assert!(!format!("{g:?}").contains("12345678"));
    }
}
