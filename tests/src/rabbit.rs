//! A RabbitMQ cluster on loopback for the fleet suite (`tests/tests/fleet.rs`)
//! and the fleet bench: Debian's `rabbitmq-server` with the `rabbitmq_mqtt`
//! plugin, N nodes with their own node names, ports and data directories in
//! a temporary directory, the same Erlang cookie, joined with
//! `rabbitmqctl join_cluster`.
//!
//! Each node runs in its own process group (`setsid`-like), killed with
//! SIGKILL on drop; `epmd` (port 4369, shared by every Erlang node on the
//! machine) is left running, as Erlang itself does.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_tcp_port, run_with_timeout};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
/// Longest wait for one node to boot (a loaded 2-core box: ~15 s).
const BOOT_LIMIT: Duration = Duration::from_secs(90);

/// Whether Debian's rabbitmq-server is installed. Outside CI a missing
/// broker skips the suite with a message; under CI it fails it.
pub fn installed() -> bool {
    let ok = Path::new(SERVER).exists() && Path::new(CTL).exists();
    if !ok {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI is missing a test prerequisite: rabbitmq-server"
        );
        eprintln!("SKIPPED: needs rabbitmq-server (run scripts/install-peers)");
    }
    ok
}

/// One node of the cluster.
pub struct Node {
    /// `NAME@localhost`.
    pub name: String,
    /// MQTT listener on 127.0.0.1.
    pub mqtt_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(root: &Path, short: &str) -> Node {
        let dir = root.join(short);
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("node dir");
        let cookie = home.join(".erlang.cookie");
        std::fs::write(&cookie, "TGWFLEETTESTCOOKIE").expect("cookie");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
                .expect("cookie mode");
        }
        let (amqp, dist, mqtt_port) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
        std::fs::write(dir.join("enabled_plugins"), "[rabbitmq_mqtt].\n").expect("plugins");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{amqp}\n\
                 mqtt.listeners.tcp.default = 127.0.0.1:{mqtt_port}\n\
                 mqtt.allow_anonymous = true\nloopback_users = none\n\
                 log.file.level = info\nlog.console = false\n"
            ),
        )
        .expect("rabbitmq.conf");
        let name = format!("tgw{}{short}@localhost", std::process::id());
        let out = std::fs::File::create(dir.join("out.log")).expect("out.log");
        let mut cmd = Command::new(SERVER);
        node_env(&mut cmd, &dir, &name)
            .env("RABBITMQ_NODE_PORT", amqp.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", dir.join("expand"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            // One scheduler and no busy-waiting: three nodes share 2 cores
            // with the gateway and the rest of the test command. The
            // distribution port on 127.0.0.1 only: on every address it
            // also collides with a listener on another loopback address
            // (a simulator on 127.41.x.y) that took the same port after
            // `free_tcp_port` let it go (`dist_port_already_used`).
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none \
                 -kernel inet_dist_use_interface {127,0,0,1}",
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0);
        let child = cmd.spawn().expect("spawn rabbitmq-server");
        Node {
            name,
            mqtt_port,
            dir,
            child: Some(child),
        }
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.mqtt_port)
    }

    /// Runs `rabbitmqctl -n NODE ARGS`, returning stdout; panics with the
    /// node's log on failure or after `limit`.
    pub fn ctl(&self, args: &[&str], limit: Duration) -> String {
        let mut cmd = Command::new(CTL);
        node_env(&mut cmd, &self.dir, &self.name)
            .args(["-n", &self.name])
            .args(args);
        let out = run_with_timeout(cmd, limit);
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?} on {} failed: {}{}\nnode log:\n{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for the pid file, the Erlang distribution and the broker and
    /// its plugins (`rabbitmqctl wait`), at most [`BOOT_LIMIT`].
    fn await_boot(&self) {
        let pid = self.dir.join("pid");
        let secs = BOOT_LIMIT.as_secs().to_string();
        let pid = pid.to_string_lossy().into_owned();
        self.ctl(
            &["wait", &pid, "--timeout", &secs],
            BOOT_LIMIT + Duration::from_secs(5),
        );
    }

    /// The Erlang VM's OS process id (from its pid file), for CPU figures.
    pub fn os_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the node's whole process group with SIGKILL (no clean
    /// shutdown: connections die with it) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the node's process group with SIGSTOP: its sockets stay open
    /// and take bytes, but nothing is answered (no PUBACK) until it is
    /// killed.
    pub fn freeze(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-STOP", "--", &format!("-{}", c.id())])
                .status();
        }
    }

    /// The last lines of its log files, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        for p in [
            self.dir.join("out.log"),
            self.dir.join("log").join(format!("{}.log", self.name)),
        ] {
            let t = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            let from = lines.len().saturating_sub(60);
            s.push_str(&format!(
                "--- {}\n{}\n",
                p.display(),
                lines[from..].join("\n")
            ));
        }
        s
    }
}

fn node_env<'a>(cmd: &'a mut Command, dir: &Path, name: &str) -> &'a mut Command {
    cmd.env("HOME", dir.join("home"))
        .env("RABBITMQ_NODENAME", name)
        .env("RABBITMQ_USE_LONGNAME", "false")
        .env_remove("RABBITMQ_ERLANG_COOKIE")
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Drop for Cluster {
    /// When the test failed, the nodes' log tails go with the failure.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("=== {}\n{}", n.name, n.log_tail());
            }
        }
    }
}

/// N nodes joined into one cluster; node 0 is the one the others joined.
pub struct Cluster {
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes at once, waits for each, and joins nodes 1.. to
    /// node 0 (`stop_app`, `join_cluster`, `start_app`). Checks that
    /// `cluster_status` lists every node as running.
    pub fn start(n: usize) -> Cluster {
        let t0 = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let shorts = ["a", "b", "c", "d", "e"];
        let nodes: Vec<Node> = shorts[..n]
            .iter()
            .map(|s| Node::start(dir.path(), s))
            .collect();
        for node in &nodes {
            node.await_boot();
        }
        eprintln!("rabbit: {n} nodes up at {:?}", t0.elapsed());
        let lim = Duration::from_secs(60);
        for node in &nodes[1..] {
            node.ctl(&["stop_app", "-q"], lim);
            node.ctl(&["join_cluster", "-q", &nodes[0].name], lim);
            node.ctl(&["start_app", "-q"], lim);
            node.ctl(&["await_startup", "-q"], lim);
        }
        let status = nodes[0].ctl(&["cluster_status", "--formatter", "json"], lim);
        let v: serde_json::Value = serde_json::from_str(status.trim()).unwrap_or_else(|e| {
            panic!("cluster_status is not JSON ({e}): {status}");
        });
        let running: Vec<&str> = v["running_nodes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        for node in &nodes {
            assert!(
                running.contains(&node.name.as_str()),
                "{} is not running in the cluster: {status}",
                node.name
            );
        }
        eprintln!("rabbit: cluster of {n} formed at {:?}", t0.elapsed());
        Cluster { nodes, _dir: dir }
    }
}
