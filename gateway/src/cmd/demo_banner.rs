//! The banner of `tgw demo`: where to look, printed once the first
//! discovery round has found the cameras (so the ids it names exist in the
//! API and on every dashboard screen), again on SIGUSR1, and every few
//! minutes at info level (without the password: secrets stay out of logs).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::base::logging::say;

/// How often the banner is logged (at info, without the password).
const REPEAT: Duration = Duration::from_secs(300);

/// The longest wait for the first discovery round before printing anyway.
const DISCOVERY_WAIT: Duration = Duration::from_secs(30);

/// What the banner names.
pub(super) struct Banner {
    pub township: String,
    pub cameras: usize,
    pub speakers: usize,
    /// Driver kinds of the horns, e.g. `rtp, sip, axis`.
    pub speaker_kinds: String,
    pub http: SocketAddr,
    /// SHA-256 of the dashboard's certificate when it is served over HTTPS.
    pub tls_fingerprint: Option<String>,
    pub admin_password: String,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub broker: String,
    pub broker_host: String,
    pub broker_port: u16,
    pub control: String,
    /// Simulator id (`cam-0005`) → the gateway's id (`cam-34bd86cc20`).
    pub ids: HashMap<String, String>,
    /// Simulator ids of the cameras left in the inbox.
    pub inbox: Vec<String>,
    /// Simulator ids with a fault from the start, and the fault.
    pub faulty: Vec<(String, &'static str)>,
    /// The wrong-password camera (simulator id) and the login it takes now,
    /// so the demo's user can fix it from the camera's page.
    pub changed_login: Option<(String, String)>,
}

impl Banner {
    /// The gateway's id of simulator camera `sim`, with the simulator's in
    /// brackets.
    pub(super) fn id(&self, sim: &str) -> String {
        match self.ids.get(sim) {
            Some(g) => format!("{g} ({sim})"),
            None => sim.to_string(),
        }
    }

    /// The banner's text; the admin password only when `secret`.
    pub(super) fn text(&self, secret: bool) -> String {
        let http = match &self.tls_fingerprint {
            Some(_) => format!("https://{}", self.http),
            None => format!("http://{}", self.http),
        };
        let tls = match &self.tls_fingerprint {
            Some(f) => {
                format!("\x20 https certificate: SHA-256 {f} (compare with the browser's)\n")
            }
            None => String::new(),
        };
        let dd = self.data_dir.display();
        let cfg = self.config.display();
        let pw = if secret {
            self.admin_password.clone()
        } else {
            "(as first printed; `kill -USR1 <pid>` prints it again)".into()
        };
        let inbox: Vec<String> = self.inbox.iter().map(|s| self.id(s)).collect();
        let faulty: Vec<String> = self
            .faulty
            .iter()
            .map(|(s, f)| format!("{} ({f})", self.id(s)))
            .collect();
        let adopted = self.cameras - self.inbox.len();
        let tgw = tgw_command();
        // Printed copy only: the simulated camera's password stays out of logs.
        let fix = match (&self.changed_login, secret) {
            (Some((sim, pw)), true) => format!(
                "\x20 fix a login:       {} now takes admin / {pw}: set it on its page (摄像机 → 设置登录) and watch it turn 正常\n",
                self.id(sim)
            ),
            _ => String::new(),
        };
        format!(
            "\n{township} demo: {cameras} simulated cameras ({adopted} adopted, {n_inbox} left in the inbox) and {speakers} loudspeakers ({kinds})\n\
             \x20 dashboard (zh-CN): {http}/   log in as admin / {pw}\n\
             {tls}\
             \x20 API token:         {dd}/cli-token (admin; curl -H \"Authorization: Bearer $(cat {dd}/cli-token)\" {http}/api/v1/cameras)\n\
             \x20 camera health:     {tgw} status --config {cfg}\n\
             \x20 devices:           {tgw} devices list --data-dir {dd}\n\
             \x20 configuration:     {cfg}\n\
             \x20 MQTT ({broker}):  mosquitto_sub -h {bhost} -p {bport} -t 'tgw/v1/#' -v\n\
             \x20 to adopt (inbox):  {inbox}\n\
             \x20 faults from start: {faulty}; every 40 s another camera gets a fault for 60 s\n\
             {fix}\
             \x20 inject a fault:    curl -X POST http://{ctl}/devices/cam-0003/fault -d offline   (simulator ids: cam-0003 is {c3} on the dashboard)\n\
             \x20 timetable:         held in the store, editable in the dashboard: morning and evening policy notices, a Friday fire-safety reminder,\n\
             \x20                    quiet hours in 青山社区 21:30-07:00, a demo notice every 15 minutes\n\
             \x20 emergency:         a signed broadcast over MQTT 60 s after start, then every 10 minutes\n\
             \x20 this banner again: kill -USR1 {pid}\n\
             Ctrl-C stops.\n",
            township = self.township,
            cameras = self.cameras,
            n_inbox = self.inbox.len(),
            speakers = self.speakers,
            kinds = self.speaker_kinds,
            broker = self.broker,
            bhost = self.broker_host,
            bport = self.broker_port,
            inbox = if inbox.is_empty() {
                "-".into()
            } else {
                inbox.join(", ")
            },
            faulty = if faulty.is_empty() {
                "-".into()
            } else {
                faulty.join(", ")
            },
            ctl = self.control,
            c3 = self.ids.get("cam-0003").map_or("-", String::as_str),
            pid = std::process::id(),
        )
    }
}

/// `tgw` when it is on PATH, else the full path of this binary.
fn tgw_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "tgw".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::canonicalize(d.join("tgw"))
                .is_ok_and(|t| std::fs::canonicalize(&exe).is_ok_and(|e| e == t))
        })
    });
    if on_path {
        "tgw".into()
    } else {
        exe.display().to_string()
    }
}

/// Prints the banner once the store holds every camera (or after
/// [`DISCOVERY_WAIT`]), then again on SIGUSR1 and, without the password,
/// every [`REPEAT`] at info level.
pub(super) fn spawn_banner(
    banner: Banner,
    store: crate::store::Store,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before anything waits: SIGUSR1 must never kill the demo.
    let usr1 = signal(SignalKind::user_defined1());
    tokio::spawn(async move {
        let mut usr1 = match usr1 {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGUSR1 handler; the banner is not repeated on demand");
                None
            }
        };
        let waited = async {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let cams = store
                    .devices(None)
                    .map(|d| d.iter().filter(|d| d.kind == "camera").count());
                if cams.is_ok_and(|n| n >= banner.cameras) {
                    return;
                }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::timeout(DISCOVERY_WAIT, waited) => {}
        }
        summary(&store);
        say(format_args!("{}", banner.text(true)));
        let mut every = tokio::time::interval(REPEAT);
        every.tick().await;
        loop {
            let sig = async {
                match usr1.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = sig => say(format_args!("{}", banner.text(true))),
                _ = every.tick() => tracing::info!("{}", banner.text(false)),
            }
        }
    });
}

/// One line: what the first round found.
fn summary(store: &crate::store::Store) {
    if let Ok(devs) = store.devices(None) {
        let cams: Vec<_> = devs.iter().filter(|d| d.kind == "camera").collect();
        let adopted = cams
            .iter()
            .filter(|d| d.state == crate::store::DeviceState::Adopted)
            .count();
        say(format_args!(
            "demo: {} cameras discovered, {adopted} adopted, {} waiting in the inbox",
            cams.len(),
            cams.len() - adopted
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner() -> Banner {
        Banner {
            township: "青山镇".into(),
            cameras: 12,
            speakers: 5,
            speaker_kinds: "axis, cloud, rtp, rtp-multicast, sip".into(),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_fingerprint: None,
            admin_password: "Secret-Admin-pw9".into(),
            data_dir: PathBuf::from("/d"),
            config: PathBuf::from("/d/gateway.toml"),
            broker: "mqtt://127.0.0.1:1883".into(),
            broker_host: "127.0.0.1".into(),
            broker_port: 1883,
            control: "127.0.0.1:9".into(),
            ids: HashMap::from([
                ("cam-0003".into(), "cam-8cab520a37".into()),
                ("cam-0005".into(), "cam-34bd86cc20".into()),
                ("cam-0012".into(), "cam-c08a321775".into()),
            ]),
            inbox: vec!["cam-0012".into()],
            faulty: vec![("cam-0005".into(), "wrong password")],
            changed_login: Some(("cam-0005".into(), "cam-pw#changed".into())),
        }
    }

    /// The banner names cameras by the gateway's ids (the simulator's in
    /// brackets); the logged copy leaves the password out.
    #[test]
    fn banner_uses_gateway_ids_and_logs_no_password() {
        let b = banner();
        let printed = b.text(true);
        assert!(printed.contains("admin / Secret-Admin-pw9"), "{printed}");
        assert!(
            printed.contains(
                "fix a login:       cam-34bd86cc20 (cam-0005) now takes admin / cam-pw#changed"
            ),
            "{printed}"
        );
        assert!(!b.text(false).contains("cam-pw#changed"));
        assert!(
            printed.contains("to adopt (inbox):  cam-c08a321775 (cam-0012)"),
            "{printed}"
        );
        assert!(
            printed.contains("cam-34bd86cc20 (cam-0005) (wrong password)"),
            "{printed}"
        );
        assert!(printed.contains("cam-0003 is cam-8cab520a37"), "{printed}");
        assert!(
            printed.contains("(11 adopted, 1 left in the inbox)"),
            "{printed}"
        );
        assert!(
            printed.contains("status --config /d/gateway.toml"),
            "{printed}"
        );
        let logged = b.text(false);
        assert!(!logged.contains("Secret-Admin-pw9"), "{logged}");
        assert!(logged.contains("kill -USR1"), "{logged}");
    }
}
