#!/usr/bin/env bash
# Fleet bench (issue 16.5): $GATEWAYS simulated township gateways × $CAMERAS
# cameras' state into one broker. Each gateway is one `mqtt_pump` process
# (the example: the real `Uplink` with its SQLite outbox, QoS 1, the real
# topics and payload envelope — no camera polling), publishing every
# camera's retained `state` and an `event` every $INTERVAL_MS. A QoS 1
# subscriber on `tgw/v1/#` counts what arrives. After $WARMUP s, for $SECS s:
# messages/s at the subscriber, CPU % (of one core) of the broker and of all
# pumps (utime+stime from /proc), and the pumps' RSS.
#
#   benches/fleet.sh [PUMP_BIN]   (default: target/release/examples/mqtt_pump)
#   GATEWAYS=50 CAMERAS=200 INTERVAL_MS=5000 SECS=60 WARMUP=20 benches/fleet.sh
#   BROKER=rabbitmq: not here; the cluster is exercised by tests/tests/fleet.rs.
#
# Loopback only: mosquitto on 127.0.0.1:$PORT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pump=${1:-$root/target/release/examples/mqtt_pump}
g=${GATEWAYS:-50}
cams=${CAMERAS:-200}
interval=${INTERVAL_MS:-5000}
secs=${SECS:-60}
warmup=${WARMUP:-20}
port=${PORT:-18883}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_inflight_messages 100
max_queued_messages 100000
persistence false
CONF
mosquitto -c "$dir/mosquitto.conf" 2>"$dir/broker.log" &
broker=$!
pids+=($broker)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t 'tgw/v1/#' -i fleet-bench -F '%t' > "$dir/sub.txt" &
subp=$!
pids+=($subp)
sleep 1

publish=$((warmup + secs + 30))
gw=()
for i in $(seq -w 1 "$g"); do
  mkdir -p "$dir/gw$i"
  cat > "$dir/gw$i/gateway.toml" <<TOML
[gateway]
site = "county"
id = "gw-$i"
data_dir = "$dir/gw$i"
[township]
code = "county"
name = "Bench"
[discovery]
enabled = false
[mqtt]
url = "mqtt://127.0.0.1:$port"
drain_rate = 0
TOML
  TGW_LOG=warn "$pump" "$dir/gw$i/gateway.toml" --cameras "$cams" \
    --interval-ms "$interval" --publish-secs "$publish" > "$dir/gw$i/out.txt" 2>"$dir/gw$i/err.txt" &
  gw+=($!)
  pids+=($!)
done
sleep "$warmup"

sum_cpu() { local s=0; for p in "$@"; do s=$((s + $(cpu "$p"))); done; echo $s; }
m0=$(wc -l < "$dir/sub.txt"); b0=$(cpu "$broker"); p0=$(sum_cpu "${gw[@]}"); t0=$(date +%s.%N)
sleep "$secs"
m1=$(wc -l < "$dir/sub.txt"); b1=$(cpu "$broker"); p1=$(sum_cpu "${gw[@]}"); t1=$(date +%s.%N)
rss=0; for p in "${gw[@]}"; do rss=$((rss + $(rss_kb "$p"))); done
alive=0; for p in "${gw[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
awk -v m0="$m0" -v m1="$m1" -v b0="$b0" -v b1="$b1" -v p0="$p0" -v p1="$p1" \
    -v t0="$t0" -v t1="$t1" -v tck="$tck" -v g="$g" -v cams="$cams" -v iv="$interval" \
    -v rss="$rss" -v alive="$alive" 'BEGIN {
  el = t1 - t0
  printf "gateways %d (alive %d) x cameras %d, state+event every %d ms: offered %.0f msg/s\n", g, alive, cams, iv, g*cams*2*1000/iv
  printf "received at the subscriber: %.0f msg/s over %.0f s\n", (m1-m0)/el, el
  printf "broker CPU: %.1f %% of one core\n", (b1-b0)/tck/el*100
  printf "gateways CPU: %.1f %% of one core in all, %.2f %% per gateway\n", (p1-p0)/tck/el*100, (p1-p0)/tck/el*100/g
  printf "gateways RSS: %.0f MiB in all, %.1f MiB per gateway\n", rss/1024, rss/1024/g
}'
