#!/usr/bin/env bash
# API benchmark (issue 6): camera list latency under load with `wrk` (Debian)
# against 1,000 adopted simulated cameras, and the gateway's RSS with 1,000
# cameras and 20 dashboards connected to the live SSE stream.
#
#   benches/api.sh [TGW_BIN]        (default: target/release/tgw, else target/debug/tgw)
#
# Loopback only: cameras on 127.40.0.1 upwards, gateway on 127.0.0.1:$PORT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/tgw}
[ -x "$bin" ] || bin=$root/target/debug/tgw
command -v wrk >/dev/null || { echo "wrk missing (apt install wrk)" >&2; exit 2; }
n=${CAMERAS:-1000}
port=${PORT:-18181}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

"$bin" sim --cameras "$n" --bind 127.40.0.1 --wsd-port 13702 --no-multicast \
  --password bench-pw --username admin > "$dir/manifest.json" 2>/dev/null &
pids+=($!)
sleep 3
cat > "$dir/gateway.toml" <<TOML
[gateway]
site = "bench"
data_dir = "$dir"
[township]
code = "bench"
name = "Bench"
[[township.villages]]
code = "v1"
name = "V1"
grids = []
[discovery]
interval_secs = 600
multicast = false
cidrs = ["127.40.0.0/22"]
unicast_port = 13702
wait_ms = 2000
[[discovery.auto_adopt]]
village = "v1"
[health]
check_interval_secs = 30
[[credential_groups]]
name = "all"
username = "admin"
password = "bench-pw"
subnets = ["127.40.0.0/16"]
[http]
listen = "127.0.0.1:$port"
TOML
echo bench-user-pw | "$bin" user add bench --role viewer --config "$dir/gateway.toml" >/dev/null
token=$("$bin" user token bench --config "$dir/gateway.toml")
"$bin" run --config "$dir/gateway.toml" 2>"$dir/gw.log" &
gw=$!
pids+=($gw)
url="http://127.0.0.1:$port/api/v1/cameras"
for i in $(seq 1 120); do
  count=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $token" "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-total-count"{print $2}')
  [ "${count:-0}" -ge "$n" ] && break
  sleep 1
done
echo "cameras adopted: ${count:-0}"
sleep 20   # let the first health round finish
rss() { awk '/VmRSS/{print $2" kB"}' "/proc/$gw/status"; }
echo "RSS, $n cameras, idle: $(rss)"
echo "--- wrk: GET /api/v1/cameras (all $n cameras, ~$(curl -s -H "Authorization: Bearer $token" "$url" | wc -c) bytes)"
wrk -t2 -c8 -d15s --latency -H "Authorization: Bearer $token" "$url"
echo "--- wrk: GET /api/v1/cameras?per_page=50 (one dashboard page)"
wrk -t2 -c8 -d15s --latency -H "Authorization: Bearer $token" "$url?per_page=50&page=3"
for i in $(seq 1 20); do
  curl -s -N -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/events" > /dev/null &
  pids+=($!)
done
sleep 40   # one full health round with 20 live dashboards
echo "RSS, $n cameras, 20 SSE dashboards: $(rss)"
