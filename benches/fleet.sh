#!/usr/bin/env bash
# Fleet bench (issue 16.5): $GATEWAYS simulated township gateways × $CAMERAS
# cameras' state into one broker. Each gateway is one `mqtt_pump` process
# (the example: the real `Uplink` with its SQLite outbox, QoS 1, the real
# topics and payload envelope — no camera polling), publishing every
# camera's retained `state` and an `event` every $INTERVAL_MS. A QoS 1
# subscriber on `tgw/v1/#` counts what arrives. After $WARMUP s, for $SECS s:
# messages/s acknowledged by the broker (the pumps' PUBACK counters) and at
# the subscriber (SUB_QOS, default 1), CPU % (of one core) of the broker and of all
# pumps (utime+stime from /proc), and the pumps' RSS.
#
#   benches/fleet.sh [PUMP_BIN]   (default: target/release/examples/mqtt_pump)
#   GATEWAYS=50 CAMERAS=200 INTERVAL_MS=5000 SECS=60 WARMUP=20 benches/fleet.sh
#   BROKER=rabbitmq benches/fleet.sh [PUMP_BIN]
#     the same load through a 3-node RabbitMQ cluster (rabbitmq_mqtt), the
#     fleet suite's start-up (tests/src/rabbit.rs) run by $CLUSTER_BIN
#     (default target/debug/rabbit-cluster: cargo build -p tgw-e2e --bin
#     rabbit-cluster). Gateway i connects first to node i mod 3 (its
#     [mqtt] urls list all three, rotated); the subscriber is on node 0;
#     broker CPU is the three Erlang VMs together.
#
# Loopback only: mosquitto on 127.0.0.1:$PORT, or the cluster's ports.
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
cluster_pid=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # The cluster helper kills its nodes when its stdin (the fifo) closes.
  if [ -n "$cluster_pid" ]; then exec 4>&-; wait "$cluster_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

broker_kind=${BROKER:-mosquitto}
urls=()
brokers=()
if [ "$broker_kind" = rabbitmq ]; then
  cluster_bin=${CLUSTER_BIN:-$root/target/debug/rabbit-cluster}
  [ -x "$cluster_bin" ] || { echo "no $cluster_bin (cargo build -p tgw-e2e --bin rabbit-cluster)" >&2; exit 1; }
  mkfifo "$dir/hold"
  "$cluster_bin" 3 < "$dir/hold" > "$dir/cluster.txt" 2> "$dir/cluster.log" &
  cluster_pid=$!
  # Holding the fifo open keeps the cluster; closing it (exit) stops it.
  # Forming it takes 2-5 min on a loaded 2-core box: wait up to 10 min.
  exec 4> "$dir/hold"
  for _ in $(seq 6000); do grep -q '^ready$' "$dir/cluster.txt" && break; sleep 0.1; done
  grep -q '^ready$' "$dir/cluster.txt" || { cat "$dir/cluster.log" >&2; exit 1; }
  while read -r u p; do [ "$u" = ready ] || { urls+=("$u"); brokers+=("$p"); }; done < "$dir/cluster.txt"
  sub_port=${urls[0]##*:}
else
  cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_inflight_messages 100
max_queued_messages 100000
persistence false
CONF
  mosquitto -c "$dir/mosquitto.conf" 2>"$dir/broker.log" &
  brokers+=($!)
  pids+=($!)
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  urls+=("mqtt://127.0.0.1:$port")
  sub_port=$port
fi
mosquitto_sub -h 127.0.0.1 -p "$sub_port" -q "${SUB_QOS:-1}" -t 'tgw/v1/#' -i fleet-bench -F '%t' > "$dir/sub.txt" &
subp=$!
pids+=($subp)
sleep 1

publish=$((warmup + secs + 30))
gw=()
for i in $(seq -w 1 "$g"); do
  mkdir -p "$dir/gw$i"
  # urls rotated: gateway i tries node i mod N first.
  n=${#urls[@]}; list=
  for k in $(seq 0 $((n - 1))); do
    u=${urls[$(( (10#$i + k) % n ))]}; list="$list${list:+, }\"$u\""
  done
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
urls = [$list]
drain_rate = 0
TOML
  TGW_LOG=warn "$pump" "$dir/gw$i/gateway.toml" --cameras "$cams" \
    --interval-ms "$interval" --publish-secs "$publish" --progress-ms 1000 > "$dir/gw$i/out.txt" 2>"$dir/gw$i/err.txt" &
  gw+=($!)
  pids+=($!)
done
sleep "$warmup"

# Broker-acknowledged publishes (PUBACKs) of all pumps and their outbox
# depth, from each pump's last `progress sent= acked= resent= depth=` line.
acked() {
  local a=0 d=0 l
  for f in "$dir"/gw*/out.txt; do
    l=$(grep '^progress ' "$f" | tail -n1)
    a=$((a + $(echo "$l" | sed -n 's/.* acked=\([0-9]*\).*/\1/p' | grep . || echo 0)))
    d=$((d + $(echo "$l" | sed -n 's/.* depth=\([0-9]*\).*/\1/p' | grep . || echo 0)))
  done
  echo "$a $d"
}
sum_cpu() { local s=0; for p in "$@"; do s=$((s + $(cpu "$p"))); done; echo $s; }
read -r a0 _ < <(acked); m0=$(wc -l < "$dir/sub.txt"); b0=$(sum_cpu "${brokers[@]}"); p0=$(sum_cpu "${gw[@]}"); t0=$(date +%s.%N)
sleep "$secs"
read -r a1 depth < <(acked); m1=$(wc -l < "$dir/sub.txt"); b1=$(sum_cpu "${brokers[@]}"); p1=$(sum_cpu "${gw[@]}"); t1=$(date +%s.%N)
rss=0; for p in "${gw[@]}"; do rss=$((rss + $(rss_kb "$p"))); done
alive=0; for p in "${gw[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
awk -v m0="$m0" -v m1="$m1" -v b0="$b0" -v b1="$b1" -v p0="$p0" -v p1="$p1" \
    -v t0="$t0" -v t1="$t1" -v tck="$tck" -v g="$g" -v cams="$cams" -v iv="$interval" \
    -v rss="$rss" -v alive="$alive" -v a0="$a0" -v a1="$a1" -v depth="$depth" -v kind="$broker_kind" -v nb="${#brokers[@]}" 'BEGIN {
  el = t1 - t0
  printf "gateways %d (alive %d) x cameras %d, state+event every %d ms: offered %.0f msg/s\n", g, alive, cams, iv, g*cams*2*1000/iv
  printf "acknowledged by the broker (PUBACK): %.0f msg/s; outboxes hold %d at the end\n", (a1-a0)/el, depth
  printf "received at the subscriber: %.0f msg/s over %.0f s\n", (m1-m0)/el, el
  printf "broker (%s, %d process(es)) CPU: %.1f %% of one core\n", kind, nb, (b1-b0)/tck/el*100
  printf "gateways CPU: %.1f %% of one core in all, %.2f %% per gateway\n", (p1-p0)/tck/el*100, (p1-p0)/tck/el*100/g
  printf "gateways RSS: %.0f MiB in all, %.1f MiB per gateway\n", rss/1024, rss/1024/g
}'
