//! `tgw run` for the suites: [`GatewayConfig`] writes its `gateway.toml`
//! from the pieces a suite needs, [`start_gateway`] / [`GatewayStart`] run
//! it and wait until it serves HTTP; the [`Gateway`] dies with its test.
//!
//! ```no_run
//! # use tgw_e2e::*;
//! let dir = tempfile::tempdir().expect("tmp");
//! let http = format!("127.0.0.1:{}", free_tcp_port());
//! let cfg = GatewayConfig::new(dir.path())
//!     .no_discovery()
//!     .section("[health]", "enabled = false")
//!     .http(&http)
//!     .write(dir.path().join("gateway.toml"));
//! let gw = start_gateway(&cfg, &http);
//! ```
// Waiting for the child to serve needs real time.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::process::{KillOnDrop, SpawnKilled};
use crate::{http_get, tgw, wait_for};

/// The gateway's GB/T 28181 id in [`GatewayConfig::gb28181`].
pub const GB_GATEWAY_ID: &str = "34020000002000000099";
/// The platform's id in [`GatewayConfig::gb_platform`].
pub const GB_PLATFORM_ID: &str = "34020000002000000001";
/// The platform's SIP domain in [`GatewayConfig::gb_platform`].
pub const GB_DOMAIN: &str = "3402000000";

/// A gateway configuration: `[gateway]` (site `qingshan`, the data
/// directory), `[township]` (`qingshan`, 青山镇) with its villages, then
/// the sections in the order they were added. A `[table]` added twice is
/// one table with both bodies; `[[array]]` tables are kept apart.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    data_dir: PathBuf,
    site: String,
    gateway: Vec<String>,
    township: (String, String),
    villages: Vec<String>,
    sections: Vec<(String, String)>,
}

impl GatewayConfig {
    /// Site and township `qingshan` (青山镇), data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> GatewayConfig {
        GatewayConfig {
            data_dir: data_dir.into(),
            site: "qingshan".into(),
            gateway: Vec::new(),
            township: ("qingshan".into(), "青山镇".into()),
            villages: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// What [`crate::mqtt_config`] starts from: site and township
    /// `test-site` (Test), gateway id `gw-t`, discovery off, MQTT to `url`.
    pub fn test_site(data_dir: impl Into<PathBuf>, url: &str) -> GatewayConfig {
        GatewayConfig::new(data_dir)
            .site("test-site")
            .id("gw-t")
            .township("test-site", "Test")
            .no_discovery()
            .mqtt(url)
    }

    /// `[gateway] site`.
    pub fn site(mut self, site: &str) -> GatewayConfig {
        self.site = site.into();
        self
    }

    /// `[gateway] id`.
    pub fn id(self, id: &str) -> GatewayConfig {
        self.gateway(&format!("id = \"{id}\""))
    }

    /// `[gateway] timezone`.
    pub fn timezone(self, tz: &str) -> GatewayConfig {
        self.gateway(&format!("timezone = \"{tz}\""))
    }

    /// More `[gateway]` keys, as TOML text.
    pub fn gateway(mut self, keys: &str) -> GatewayConfig {
        self.gateway.push(keys.trim_matches('\n').into());
        self
    }

    /// `[township] code` and `name`.
    pub fn township(mut self, code: &str, name: &str) -> GatewayConfig {
        self.township = (code.into(), name.into());
        self
    }

    /// A `[[township.villages]]` with its grids (code, name).
    pub fn village(mut self, code: &str, name: &str, grids: &[(&str, &str)]) -> GatewayConfig {
        let mut v = format!("[[township.villages]]\ncode = \"{code}\"\nname = \"{name}\"\n");
        if !grids.is_empty() {
            let list: Vec<String> = grids
                .iter()
                .map(|(c, n)| format!("{{ code = \"{c}\", name = \"{n}\" }}"))
                .collect();
            v.push_str(&format!("grids = [{}]\n", list.join(", ")));
        }
        self.villages.push(v);
        self
    }

    /// `[http] listen`.
    pub fn http(self, listen: &str) -> GatewayConfig {
        self.section("[http]", &format!("listen = \"{listen}\""))
    }

    /// `[discovery] enabled = false`.
    pub fn no_discovery(self) -> GatewayConfig {
        self.section("[discovery]", "enabled = false")
    }

    /// `[health] enabled = false`.
    pub fn no_health(self) -> GatewayConfig {
        self.section("[health]", "enabled = false")
    }

    /// Discovery by unicast Probe sweep only: `cidr`, simulated cameras
    /// answering on UDP `wsd_port`, every 10 s, no multicast.
    pub fn camera_sweep(self, cidr: &str, wsd_port: u16) -> GatewayConfig {
        self.section(
            "[discovery]",
            &format!(
                "interval_secs = 10\nmulticast = false\ncidrs = [\"{cidr}\"]\n\
                 unicast_port = {wsd_port}\nwait_ms = 500"
            ),
        )
    }

    /// An auto-adoption rule with no conditions: everything discovered is
    /// adopted.
    pub fn auto_adopt(self) -> GatewayConfig {
        self.section("[[discovery.auto_adopt]]", "")
    }

    /// Health checks every second (DESCRIBE and stream samples every 5 s,
    /// 800 ms samples, calls time out after 1.5 s); add `[health]` keys
    /// with [`GatewayConfig::section`].
    pub fn fast_health(self) -> GatewayConfig {
        self.section(
            "[health]",
            "check_interval_secs = 1\ndescribe_interval_secs = 5\nsample_interval_secs = 5\n\
             sample_ms = 800\ncall_timeout_ms = 1500",
        )
    }

    /// A `[[credential_groups]]` entry named `batch` for `subnet`.
    pub fn credential_group(self, username: &str, password: &str, subnet: &str) -> GatewayConfig {
        self.section(
            "[[credential_groups]]",
            &format!(
                "name = \"batch\"\nusername = \"{username}\"\npassword = \"{password}\"\n\
                 subnets = [\"{subnet}\"]"
            ),
        )
    }

    /// `[mqtt]` to `url`, with a 5 s keep-alive and quick reconnects
    /// (100 ms, at most 1 s apart).
    pub fn mqtt(self, url: &str) -> GatewayConfig {
        self.section(
            "[mqtt]",
            &format!(
                "url = \"{url}\"\nkeep_alive_secs = 5\nreconnect_min_ms = 100\nreconnect_max_secs = 1"
            ),
        )
    }

    /// `[gb28181]`: the gateway as lower platform [`GB_GATEWAY_ID`] (civil
    /// code 340200) on an ephemeral loopback port, and `extra` keys.
    pub fn gb28181(self, extra: &str) -> GatewayConfig {
        self.section(
            "[gb28181]",
            &format!("id = \"{GB_GATEWAY_ID}\"\ncivil_code = \"340200\"\nlisten = \"127.0.0.1:0\""),
        )
        .section("[gb28181]", extra)
    }

    /// A `[[gb28181.platforms]]` entry: the platform `county`
    /// ([`GB_PLATFORM_ID`], domain [`GB_DOMAIN`]) at `address`, with
    /// `password` and `extra` keys.
    pub fn gb_platform(self, address: &str, password: &str, extra: &str) -> GatewayConfig {
        let mut body = format!(
            "name = \"county\"\nserver_id = \"{GB_PLATFORM_ID}\"\ndomain = \"{GB_DOMAIN}\"\n\
             address = \"{address}\"\npassword = \"{password}\""
        );
        let extra = extra.trim_matches('\n');
        if !extra.is_empty() {
            body.push('\n');
            body.push_str(extra);
        }
        self.section("[[gb28181.platforms]]", &body)
    }

    /// A section under `header` (`"[gb28181]"`, `"[[gb28181.platforms]]"`)
    /// with `body` as TOML text. A `[table]` already added gets `body`
    /// appended to it.
    pub fn section(mut self, header: &str, body: &str) -> GatewayConfig {
        let body = body.trim_matches('\n');
        let same = self
            .sections
            .iter_mut()
            .find(|(h, _)| h == header && !header.starts_with("[["));
        match same {
            Some((_, text)) => {
                if !text.is_empty() && !body.is_empty() {
                    text.push('\n');
                }
                text.push_str(body);
            }
            None => self.sections.push((header.into(), body.into())),
        }
        self
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let mut out = format!(
            "[gateway]\nsite = \"{}\"\ndata_dir = \"{}\"\n",
            self.site,
            self.data_dir.display()
        );
        for line in &self.gateway {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!(
            "\n[township]\ncode = \"{}\"\nname = \"{}\"\n",
            self.township.0, self.township.1
        ));
        for v in &self.villages {
            out.push('\n');
            out.push_str(v);
        }
        for (header, body) in &self.sections {
            out.push_str(&format!("\n{header}\n"));
            if !body.is_empty() {
                out.push_str(body);
                out.push('\n');
            }
        }
        out
    }

    /// Writes the TOML to `path` and returns it.
    pub fn write(&self, path: impl Into<PathBuf>) -> PathBuf {
        let path = path.into();
        std::fs::write(&path, self.render())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

/// Where a started gateway's stderr goes.
enum Stderr {
    Null,
    Inherit,
    File(PathBuf),
}

/// How to start `tgw run --config CONFIG`: its log, its environment.
pub struct GatewayStart {
    config: PathBuf,
    http: String,
    stderr: Stderr,
    envs: Vec<(String, String)>,
}

impl GatewayStart {
    /// `tgw run` with `config`, whose `[http] listen` is `http`; stdout
    /// and stderr go nowhere.
    pub fn new(config: &Path, http: &str) -> GatewayStart {
        GatewayStart {
            config: config.into(),
            http: http.into(),
            stderr: Stderr::Null,
            envs: Vec::new(),
        }
    }

    /// Its stderr (the log) into the file `path`.
    pub fn log(mut self, path: impl Into<PathBuf>) -> GatewayStart {
        self.stderr = Stderr::File(path.into());
        self
    }

    /// Its stderr on the test's stderr.
    pub fn inherit_stderr(mut self) -> GatewayStart {
        self.stderr = Stderr::Inherit;
        self
    }

    /// An environment variable for it.
    pub fn env(mut self, key: &str, value: &str) -> GatewayStart {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Starts it and waits (at most 30 s) until `/healthz` answers; fails
    /// at once, with its log, if it exits first.
    pub fn start(self) -> Gateway {
        let mut cmd = tgw();
        cmd.args(["run", "--config"])
            .arg(&self.config)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null());
        let log = match self.stderr {
            Stderr::Null => {
                cmd.stderr(Stdio::null());
                None
            }
            Stderr::Inherit => {
                cmd.stderr(Stdio::inherit());
                None
            }
            Stderr::File(path) => {
                let file = std::fs::File::create(&path)
                    .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
                cmd.stderr(file);
                Some(path)
            }
        };
        let mut gw = Gateway {
            child: cmd.spawn_killed("tgw run"),
            http: self.http,
            log,
        };
        wait_for(Duration::from_secs(30), "tgw run to serve HTTP", || {
            if let Ok(Some(status)) = gw.child.try_wait() {
                panic!(
                    "tgw run exited ({status}) before serving HTTP:\n{}",
                    gw.log()
                );
            }
            http_get(&gw.http, "/healthz")
        });
        gw
    }
}

/// `tgw run --config CONFIG` (stderr nowhere), once `/healthz` answers on
/// `http`; see [`GatewayStart`] for a log file or environment variables.
pub fn start_gateway(config: &Path, http: &str) -> Gateway {
    GatewayStart::new(config, http).start()
}

/// A running `tgw run`, killed when dropped (its test ended or panicked).
pub struct Gateway {
    child: KillOnDrop,
    /// Its HTTP API, `127.0.0.1:PORT`.
    pub http: String,
    log: Option<PathBuf>,
}

impl Gateway {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it and waits for it to exit (its log is complete then).
    pub fn stop(&mut self) {
        self.child.stop();
    }

    /// SIGTERM, then waits (at most `limit`) for its clean shutdown.
    pub fn terminate(&mut self, limit: Duration) {
        self.child.terminate(limit);
    }

    /// Its log so far (empty unless started with [`GatewayStart::log`]).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Waits (at most 20 s) until `/readyz` answers 200.
    pub fn wait_ready(&self) {
        wait_for(Duration::from_secs(20), "gateway ready", || {
            http_get(&self.http, "/readyz").filter(|(s, _)| *s == 200)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sections keep their order, a table given twice is one table, array
    /// tables stay apart, villages follow the township.
    #[test]
    fn renders_sections_in_order_and_merges_tables() {
        let text = GatewayConfig::new("/d")
            .id("gw-1")
            .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
            .village("west", "西村", &[])
            .fast_health()
            .credential_group("admin", "pw", "127.9.9.0/24")
            .credential_group("root", "pw2", "127.9.8.0/24")
            .section("[health]", "stall_secs = 3")
            .http("127.0.0.1:8080")
            .render();
        assert_eq!(
            text,
            "[gateway]\nsite = \"qingshan\"\ndata_dir = \"/d\"\nid = \"gw-1\"\n\n\
             [township]\ncode = \"qingshan\"\nname = \"青山镇\"\n\n\
             [[township.villages]]\ncode = \"dongcun\"\nname = \"东村\"\n\
             grids = [{ code = \"dongcun-1\", name = \"东村第一网格\" }]\n\n\
             [[township.villages]]\ncode = \"west\"\nname = \"西村\"\n\n\
             [health]\ncheck_interval_secs = 1\ndescribe_interval_secs = 5\n\
             sample_interval_secs = 5\nsample_ms = 800\ncall_timeout_ms = 1500\nstall_secs = 3\n\n\
             [[credential_groups]]\nname = \"batch\"\nusername = \"admin\"\npassword = \"pw\"\n\
             subnets = [\"127.9.9.0/24\"]\n\n\
             [[credential_groups]]\nname = \"batch\"\nusername = \"root\"\npassword = \"pw2\"\n\
             subnets = [\"127.9.8.0/24\"]\n\n\
             [http]\nlisten = \"127.0.0.1:8080\"\n"
        );
    }

    /// An empty array table is its header alone; more keys for a table
    /// that ends the file continue it.
    #[test]
    fn empty_array_table_and_continued_last_table() {
        let text = GatewayConfig::test_site("/d", "mqtt://127.0.0.1:1")
            .section("[mqtt]", "command_max_bytes = 1024\n")
            .render();
        assert!(
            text.ends_with(
                "[discovery]\nenabled = false\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\
                 keep_alive_secs = 5\nreconnect_min_ms = 100\nreconnect_max_secs = 1\n\
                 command_max_bytes = 1024\n"
            ),
            "{text}"
        );
        let text = GatewayConfig::new("/d").auto_adopt().http("h").render();
        assert!(
            text.ends_with("\n[[discovery.auto_adopt]]\n\n[http]\nlisten = \"h\"\n"),
            "{text}"
        );
    }
}
