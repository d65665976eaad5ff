#!/usr/bin/env bash
# Camera list cost (issue 18.4): 1,000 adopted simulated cameras; the
# gateway's own CPU time (utime+stime from /proc) for N requests of the full
# list vs N requests of a 50-camera page, and the list's size plain vs
# gzipped (Accept-Encoding: gzip) and a 304 to its ETag.
#
#   benches/lists.sh [TGW_BIN]   (default: target/release/tgw, else target/debug/tgw)
#
# Loopback only: cameras on 127.41.0.1 upwards, gateway on 127.0.0.1:$PORT.
# Health checks are set to once an hour so the gateway is otherwise idle.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/tgw}
[ -x "$bin" ] || bin=$root/target/debug/tgw
n=${CAMERAS:-1000}
reqs=${REQUESTS:-200}
port=${PORT:-18182}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

"$bin" sim --cameras "$n" --bind 127.41.0.1 --wsd-port 13703 --no-multicast \
  --password bench-pw --username admin > "$dir/manifest.json" 2>/dev/null &
pids+=($!)
for i in $(seq 1 100); do [ -s "$dir/manifest.json" ] && break; sleep 0.2; done
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
cidrs = ["127.41.0.0/22"]
unicast_port = 13703
wait_ms = 2000
[[discovery.auto_adopt]]
village = "v1"
[health]
check_interval_secs = 3600
[[credential_groups]]
name = "all"
username = "admin"
password = "bench-pw"
subnets = ["127.41.0.0/16"]
[http]
listen = "127.0.0.1:$port"
TOML
echo bench-user-pw | "$bin" user add bench --role viewer --config "$dir/gateway.toml" >/dev/null
token=$("$bin" user token bench --config "$dir/gateway.toml")
"$bin" run --config "$dir/gateway.toml" 2>"$dir/gw.log" &
gw=$!
pids+=($gw)
url="http://127.0.0.1:$port/api/v1/cameras"
auth="Authorization: Bearer $token"
for i in $(seq 1 240); do
  count=$(curl -s -o /dev/null -D - -H "$auth" "$url?per_page=1" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-total-count"{print $2}' || true)
  [ "${count:-0}" -ge "$n" ] && break
  sleep 0.5
done
echo "cameras adopted: ${count:-0}"
sleep 30   # the inventories and first health round settle
tick=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$tick" '{print int(($14+$15)*1000/t)}' "/proc/$gw/stat"; }
measure() { # label, path
  local a b
  a=$(cpu_ms)
  for i in $(seq 1 "$reqs"); do curl -s -o /dev/null -H "$auth" "$2"; done
  b=$(cpu_ms)
  echo "$1: $reqs requests, gateway CPU $((b - a)) ms ($(awk -v d=$((b - a)) -v r="$reqs" 'BEGIN{printf "%.2f", d/r}') ms each)" >&2
  echo $((b - a))
}
full=$(measure "full list ($n)" "$url")
page=$(measure "page of 50 (page 7)" "$url?per_page=50&page=7")
idle=$(measure "idle baseline (/healthz)" "http://127.0.0.1:$port/healthz")
awk -v f="$full" -v p="$page" -v i="$idle" 'BEGIN{printf "page / full: %.1f %% (minus the /healthz baseline: %.1f %%)\n", 100*p/f, 100*(p-i)/((f-i)>0?(f-i):1)}'
plain=$(curl -s -H "$auth" "$url" | wc -c)
gz=$(curl -s -H "$auth" -H 'Accept-Encoding: gzip' "$url" | wc -c)
echo "full list size: $plain bytes plain, $gz bytes gzipped"
etag=$(curl -s -o /dev/null -D - -H "$auth" "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" -H "If-None-Match: $etag" "$url")
echo "If-None-Match: $etag -> $code"
