#!/usr/bin/env bash
# Footprint bench (issue 18.6): `tgw run` polling 1,000 simulated cameras
# (`tgw sim`, ONVIF events subscribed) and driving 200 simulated horns with
# a broadcast every minute (timetable), sampled every $EVERY s for $SECS s
# after all cameras are polled and a $WARMUP s warm-up: RSS (steady =
# median, peak), CPU % of one core, open fds (and their maximum sampled
# every second, in the window and since the start), RSS growth (mean of the last
# minute vs the first minute), broadcasts and horn outcomes in the window.
#
#   benches/footprint.sh [TGW_BIN]   (default: target/release/tgw)
#   CAMERAS=1000 SECS=600 EVERY=5 WARMUP=60 benches/footprint.sh
#   EVENTS=false benches/footprint.sh   (no ONVIF event subscriptions: the
#   cost of events is the difference between the two runs)
#   HEALTH_EXTRA=$'event_pulls = 1024\nevent_pull_wait_secs = 10'
#   benches/footprint.sh   (more [health] lines: here back-to-back long polls)
#   HORNS=0 benches/footprint.sh   (cameras only)
#   MALLOC_ARENA_MAX=2 benches/footprint.sh   (passed on to `tgw run` only)
#   GW_ENV="LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2" \
#   benches/footprint.sh   (more environment for `tgw run` only: another
#   allocator side by side, GLIBC_TUNABLES, ...)
#
# Horns: a second `tgw sim --cameras 0 --speakers $HORNS` on 127.42.0.1
# upwards (RTP, SIP and Axis horns in turn), imported with `tgw speakers
# import`; the timetable (`[broadcast] timetable`) plays a short TTS notice
# (espeak-ng) on all of them at every minute from 2 minutes after the start
# to the end of the window (at most 96 minutes: the timetable's limit).
#
# Loopback only: cameras on 127.41.0.1 upwards, horns on 127.42.0.1 upwards,
# gateway on 127.0.0.1:$PORT.
set -euo pipefail
ulimit -n 8192 || true   # tgw sim: a TCP listener and a UDP socket per camera
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/tgw}
n=${CAMERAS:-1000}
secs=${SECS:-600}
every=${EVERY:-5}
warmup=${WARMUP:-60}
port=${PORT:-18191}
horns=${HORNS:-200}
arena=${MALLOC_ARENA_MAX:-}
unset MALLOC_ARENA_MAX
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

"$bin" sim --cameras "$n" --bind 127.41.0.1 --wsd-port 13712 --no-multicast \
  --password bench-pw --username admin > "$dir/manifest.json" 2>/dev/null &
pids+=($!)
sim=$!
hsim=
if [ "$horns" -gt 0 ]; then
  "$bin" sim --cameras 0 --speakers "$horns" --speaker-kinds rtp,sip,axis \
    --bind 127.42.0.1 --wsd-port 13713 --no-multicast --password bench-pw \
    > "$dir/horns.json" 2>/dev/null &
  pids+=($!)
  hsim=$!
fi
sleep 3
cat > "$dir/gateway.toml" <<TOML
[gateway]
site = "bench"
data_dir = "$dir"
[township]
code = "bench"
name = "Bench"
[discovery]
interval_secs = 600
multicast = false
cidrs = ["127.41.0.0/22"]
unicast_port = 13712
wait_ms = 2000
[[discovery.auto_adopt]]
[health]
check_interval_secs = 30
events = ${EVENTS:-true}
${HEALTH_EXTRA:-}
[[credential_groups]]
name = "all"
username = "admin"
password = "bench-pw"
subnets = ["127.41.0.0/16"]
[http]
listen = "127.0.0.1:$port"
TOML
if [ "$horns" -gt 0 ]; then
  # The manifest's `uri` per horn → the speaker CSV (docs/speakers.md); no
  # village (the bench's [township] has none): the timetable targets `all`.
  { echo "id,name,kind,address,village,grid,zone,codec,volume,ttl,username,password"
    head -n1 "$dir/horns.json" | jq -r '.devices[] | select(.kind == "speaker") |
      (.uri | capture("^(?<s>[a-z]+):(//)?((?<u>[^:@]+):(?<p>[^@]*)@)?(?<a>[^?]+)")) as $u |
      [.id, .id, .speaker_kind,
       (if .speaker_kind == "sip" then "sip:\($u.u)@\($u.a)" else $u.a end),
       "", "", "", "pcmu", "80", "", ($u.u // ""), ($u.p // "")] | @csv'
  } > "$dir/speakers.csv"
  "$bin" speakers import "$dir/speakers.csv" --config "$dir/gateway.toml" >/dev/null
  # A broadcast at every minute from 2 minutes on, past the window's end.
  mins=$(( (secs + warmup + 300) / 60 )); [ "$mins" -gt 96 ] && mins=96
  at=$(for i in $(seq 2 $(( mins + 1 ))); do printf '"%s",' "$(date -u -d "+$i min" +%H:%M)"; done)
  cat > "$dir/timetable.toml" <<TT
timezone = "UTC"
[[programme]]
id = "bench"
items = [ { tts = "bench notice" } ]
priority = "routine"
[[schedule]]
id = "every-minute"
programme = "bench"
targets = ["all"]
at = [${at%,}]
TT
  printf '[broadcast]\ntimetable = "%s"\n' "$dir/timetable.toml" >> "$dir/gateway.toml"
fi
[ -n "$arena" ] && export MALLOC_ARENA_MAX=$arena
# shellcheck disable=SC2086 # GW_ENV is a list of NAME=VALUE words
env ${GW_ENV:-} "$bin" run --config "$dir/gateway.toml" 2>"$dir/gw.log" &
gw=$!
pids+=($gw)
# Open files every second from the start (the 5 s samples miss the spikes:
# a broadcast to every horn, the first inventories).
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
( while kill -0 "$gw" 2>/dev/null; do echo "$(date +%s) $(fds $gw)"; sleep 1; done ) > "$dir/fds1" &
pids+=($!)
# (|| true: the gateway may not listen yet, and set -e would end the script)
metric() { { curl -s "http://127.0.0.1:$port/metrics" || true; } | awk -v m="$1" '$1 ~ "^"m {s+=$2} END {print s+0}'; }
for _ in $(seq 1 180); do
  polled=$(metric 'tgw_cameras[{]')
  [ "${polled:-0}" -ge "$n" ] && break
  sleep 1
done
echo "cameras polled: $polled of $n (unchecked: $(metric tgw_cameras_unchecked))"
sleep "$warmup"
tck=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
out="$dir/samples"
b0=$(metric 'tgw_broadcasts_finished_total[{]')
t0=$(date +%s.%N); c0=$(ticks $gw); s0=$(ticks $sim)
end=$(( $(date +%s) + secs ))
while [ "$(date +%s)" -lt "$end" ]; do
  echo "$(date +%s) $(rss_kb $gw) $(fds $gw)" >> "$out"
  sleep "$every"
done
t1=$(date +%s.%N); c1=$(ticks $gw); s1=$(ticks $sim)
checks=$(metric 'tgw_camera_checks_total[{]result="ok"')
by_pull=$(metric 'tgw_camera_checks_total[{]result="event_pull"')
b1=$(metric 'tgw_broadcasts_finished_total[{]')
echo "--- $(date -u +%FT%TZ) $(uname -m), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load $(cut -d' ' -f1-3 /proc/loadavg); MALLOC_ARENA_MAX=${arena:-unset}; GW_ENV=${GW_ENV:-unset}"
med=$(awk '{print $2}' "$out" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
awk -v med_kb="$med" -v wall="$(echo "$t1 - $t0" | bc)" -v cpu="$(( c1 - c0 ))" -v simcpu="$(( s1 - s0 ))" -v tck="$tck" '
  { rss[NR] = $2 / 1024; fd[NR] = $3; if ($2 > peak) peak = $2; if ($3 > fdmax) fdmax = $3; fdsum += $3 }
  END {
    n = NR; med = med_kb / 1024; lo = rss[1]; for (i = 2; i <= n; i++) if (rss[i] < lo) lo = rss[i];
    per = int(60 / '"$every"'); if (per < 1) per = 1; if (per > n) per = n;
    for (i = 1; i <= per; i++) { a += rss[i]; b += rss[n - per + i] }
    printf "samples %d over %.0f s\n", n, wall
    printf "RSS steady (median) %.1f MiB, peak %.1f MiB, min %.1f MiB\n", med, peak / 1024, lo
    printf "RSS growth first→last minute %+.1f %%\n", 100 * (b - a) / a
    printf "CPU tgw run %.2f %% of one core (tgw sim %.2f %%)\n", 100 * cpu / tck / wall, 100 * simcpu / tck / wall
    printf "fds mean %.0f, max %d\n", fdsum / n, fdmax
  }' "$out"
awk -v t0="${t0%.*}" '{ if ($2 > all) all = $2; if ($1 >= t0 && $2 > win) win = $2 }
  END { printf "fds sampled every second: max %d in the window, %d since the start\n", win, all }' "$dir/fds1"
echo "at the end: $(grep -E '^(RssAnon|RssFile|Threads)' /proc/$gw/status | tr -s ' \t' ' ' | paste -sd';')"
echo "ok checks counted: $checks, and ${by_pull:-0} that an answered event pull stood for; unchecked now: $(metric tgw_cameras_unchecked)"
echo "event subscriptions active: $(metric 'tgw_camera_event_subscriptions[{]state="active"'), no-service: $(metric 'tgw_camera_event_subscriptions[{]state="no-service"'); events received: $(metric 'tgw_camera_events_total[{]')"
if [ "$horns" -gt 0 ]; then
  echo "horns: $horns; broadcasts ended in the window: $(( b1 - b0 )) (done: $(metric 'tgw_broadcasts_finished_total[{]state="done"') since start); horn outcomes since start: done $(metric 'tgw_broadcast_horn_outcomes_total[{].*outcome="done"'), failed $(metric 'tgw_broadcast_horn_outcomes_total[{].*outcome="failed"'), dropped $(metric 'tgw_broadcast_horn_outcomes_total[{].*outcome="dropped"')"
fi
