//! The fleet suite's RabbitMQ cluster ([`tgw_e2e::rabbit::Cluster`]) for
//! `benches/fleet.sh BROKER=rabbitmq`: starts N nodes (default 3) joined into
//! one cluster, prints one line per node, `mqtt://127.0.0.1:PORT PID`
//! (the Erlang VM's process id, for CPU figures), then `ready`, and keeps
//! the cluster until its standard input closes; then the nodes are killed.
//!
//!   rabbit-cluster [N] < fifo

use std::io::{Read as _, Write as _};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .clamp(1, 5);
    let cluster = tgw_e2e::rabbit::Cluster::start(n);
    let mut out = std::io::stdout().lock();
    for node in &cluster.nodes {
        let _ = writeln!(out, "{} {}", node.url(), node.os_pid().unwrap_or(0));
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(cluster);
}
