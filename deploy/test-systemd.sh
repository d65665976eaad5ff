#!/bin/bash
# The .deb under a real systemd (docs/deploy.md, issue 16): boots systemd as
# PID 1 in a throw-away container (new PID, mount, UTS, network and cgroup
# namespaces; the root is an overlay of / whose writes go to a tmpfs; only a
# loopback network), then: dpkg -i the package, systemctl start tgw
# (Type=notify: start returns once READY=1), log in over HTTPS to the
# self-signed certificate, systemctl reload (SIGHUP applies log.level),
# systemctl stop, dpkg --purge. Nothing on the host changes; the container
# and its files go away when its PID 1 is killed at the end.
#
#   deploy/test-systemd.sh DEB [WORKDIR]
#
# Needs root, unshare, overlayfs and /lib/systemd/systemd. Exits 77 with
# "SKIP: reason" when the machine cannot run it, 0 when every step passed,
# 1 with the failing step, the unit's status and journal otherwise.
set -u
deb=${1:?usage: test-systemd.sh DEB [WORKDIR]}
work=${2:-$(mktemp -d /tmp/tgw-systemd.XXXXXX)}
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (unshare, mount, chroot)"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd"
command -v unshare >/dev/null || skip "no unshare"
command -v nsenter >/dev/null || skip "no nsenter"
grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"
grep -qw cgroup2 /proc/filesystems || skip "no cgroup2 in this kernel"
[ -f "$deb" ] || { echo "FAIL: no package at $deb" >&2; exit 1; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

mkdir -p "$work"
root=$work/root
pw='deploy-Test-pw-1'
https=127.0.0.1:8443

# The container's PID 1 side: mounts, then exec systemd. Runs in the new
# namespaces, so none of these mounts is seen by the host.
cat > "$work/boot.sh" <<BOOT
#!/bin/bash
set -eu
mount --make-rprivate /
mkdir -p "$work/t" "$root"
mount -t tmpfs tmpfs "$work/t"
mkdir -p "$work/t/upper" "$work/t/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/t/upper,workdir=$work/t/work" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount -t tmpfs tmpfs "$root/sys/fs/cgroup"
mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=755 tmpfs "$root/dev"
for d in null zero full random urandom tty; do
  touch "$root/dev/\$d"; mount --bind "/dev/\$d" "$root/dev/\$d"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=666 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
hostname tgw-systemd-test
ip link set lo up
# basic.target: no host services (brokers, databases) start in here.
exec chroot "$root" env container=other /lib/systemd/systemd --unit=basic.target \
  --log-target=console --show-status=no
BOOT
chmod +x "$work/boot.sh"

unshare --pid --fork --mount --uts --net --cgroup --mount-proc "$work/boot.sh" \
  > "$work/systemd.log" 2>&1 &
ushare=$!
sd=
cleanup() {
  [ -n "$sd" ] && kill -9 "$sd" 2>/dev/null
  kill -9 "$ushare" 2>/dev/null
  wait "$ushare" 2>/dev/null
}
trap cleanup EXIT

# Runs a command inside the container (its namespaces and root).
ct() { nsenter -t "$sd" -m -u -n -p -C chroot /proc/1/root "$@"; }
fail() {
  echo "FAIL: $*" >&2
  if [ -n "$sd" ]; then
    ct systemctl status tgw --no-pager -l >&2 2>&1
    ct journalctl -u tgw --no-pager -n 60 >&2 2>&1
  fi
  echo "--- systemd console" >&2; tail -n 30 "$work/systemd.log" >&2
  exit 1
}
step() { echo "== $*"; }
# Waits up to $1 seconds for the command after it to succeed.
until_ok() {
  local n=$(( $1 * 5 )); shift
  while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; n=$((n - 1)); done
  return 1
}

step "boot systemd as PID 1"
for _ in $(seq 50); do
  sd=$(pgrep -P "$ushare" 2>/dev/null | head -n1)
  [ -n "$sd" ] && [ "$(cat "/proc/$sd/comm" 2>/dev/null)" = systemd ] && break
  sd=; sleep 0.2
done
[ -n "$sd" ] || fail "systemd did not start (cgroup/namespace problem?)"
booted() { s=$(ct systemctl is-system-running 2>/dev/null); [ "$s" = running ] || [ "$s" = degraded ]; }
until_ok 30 booted || fail "systemd did not reach basic.target within 30 s ($(ct systemctl is-system-running 2>&1))"
echo "systemd $(ct systemctl --version | head -n1 | cut -d' ' -f2) up: $(ct systemctl is-system-running)"

step "dpkg -i $(basename "$deb")"
ct sh -c 'cat > /root/tgw.deb' < "$deb" || fail "copying the package in"
ct dpkg -i /root/tgw.deb > "$work/dpkg-install.log" 2>&1 || { cat "$work/dpkg-install.log" >&2; fail "dpkg -i"; }
ct journalctl -u tgw --no-pager -o cat > "$work/install-journal.log" 2>&1
# postinst starts the service with the shipped configuration
# (deploy/debian/gateway.toml): it must come up as it is, HTTPS on 8443.
shipped_up() { [ "$(ct systemctl show -P ActiveState tgw)" = active ]; }
until_ok 30 shipped_up || { cat "$work/install-journal.log" >&2; fail "the shipped configuration did not start: $(ct systemctl show -P ActiveState tgw)"; }
code=""
shipped_https() { code=$(ct curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:8443/healthz 2>/dev/null); [ "$code" = 200 ]; }
until_ok 30 shipped_https || fail "the shipped configuration serves no https://127.0.0.1:8443/healthz (last: $code)"
echo "first start with the shipped config: active, https://127.0.0.1:8443/healthz 200"
ct getent passwd tgw >/dev/null || fail "postinst made no user tgw"
[ "$(ct stat -c '%a %U' /var/lib/tgw)" = "700 tgw" ] || fail "/var/lib/tgw is $(ct stat -c '%a %U' /var/lib/tgw)"
[ "$(ct stat -c '%a %U:%G' /etc/tgw/gateway.toml)" = "640 root:tgw" ] || fail "gateway.toml mode"
ct systemctl is-enabled tgw >/dev/null || fail "postinst did not enable tgw"

conf() {
  cat <<TOML
[gateway]
site = "systemd-test"
data_dir = "/var/lib/tgw"
[log]
level = "$1"
[township]
code = "systemd-test"
name = "部署测试镇"
[[township.villages]]
code = "dongcun"
name = "东村"
[discovery]
enabled = false
[http]
listen = "$https"
tls = "self-signed"
TOML
}
step "configure HTTPS (self-signed) and systemctl restart tgw"
conf info | ct tee /etc/tgw/gateway.toml >/dev/null
ct systemctl stop tgw
ct systemctl reset-failed tgw 2>/dev/null
# WatchdogSec=2 for the test (the unit says 30): pings every second.
ct mkdir -p /etc/systemd/system/tgw.service.d
printf '[Service]\nWatchdogSec=2\n' | ct tee /etc/systemd/system/tgw.service.d/watchdog.conf >/dev/null
ct systemctl daemon-reload
# Type=notify: start returns only after READY=1 (or fails).
timeout 60 nsenter -t "$sd" -m -u -n -p -C chroot /proc/1/root systemctl start tgw || fail "systemctl start tgw"
[ "$(ct systemctl show -P ActiveState tgw)" = active ] || fail "tgw not active after start"
[ "$(ct systemctl show -P Type tgw)" = notify ] || fail "unit type is not notify"
pid=$(ct systemctl show -P MainPID tgw)
echo "tgw active (Type=notify, READY=1 received), MainPID $pid, user $(ct ps -o user= -p "$pid")"
wd0=$(ct systemctl show -P WatchdogTimestampMonotonic tgw)
pinged() { [ "$(ct systemctl show -P WatchdogTimestampMonotonic tgw)" != "$wd0" ]; }
until_ok 10 pinged || fail "no WATCHDOG=1 within 10 s (WatchdogSec=2)"

step "create admin, log in over HTTPS"
echo "$pw" | ct runuser -u tgw -- tgw user add admin --role admin --config /etc/tgw/gateway.toml \
  > "$work/useradd.log" 2>&1 || { cat "$work/useradd.log" >&2; fail "tgw user add"; }
fp_log=$(ct journalctl -u tgw --no-pager -o cat | grep -o 'sha256=[0-9A-Fa-f:]*' | tail -n1)
[ -n "$fp_log" ] || fail "no 'https listening … sha256=' line in the journal"
fp_cert=$(ct openssl x509 -in /var/lib/tgw/https-self-signed.crt -noout -fingerprint -sha256 | cut -d= -f2)
echo "journal $fp_log; certificate sha256=$fp_cert"
[ "${fp_log#sha256=}" = "$fp_cert" ] || [ "$(echo "${fp_log#sha256=}" | tr -d : | tr a-f A-F)" = "$(echo "$fp_cert" | tr -d : | tr a-f A-F)" ] \
  || fail "logged fingerprint differs from the certificate's"
ct cp /var/lib/tgw/https-self-signed.crt /tmp/ca.crt
out=$(ct curl -sS --cacert /tmp/ca.crt -D /tmp/h -o /tmp/b -w '%{http_code}' \
  -H 'content-type: application/json' -d "{\"user\":\"admin\",\"password\":\"$pw\"}" \
  "https://$https/api/v1/login" 2>&1) || fail "curl https login: $out"
[ "$out" = 200 ] || fail "login answered $out: $(ct cat /tmp/b)"
ct grep -qi '^set-cookie:.*; *secure' /tmp/h || fail "session cookie without Secure: $(ct cat /tmp/h)"
ct grep -qi '^strict-transport-security:' /tmp/h || fail "no Strict-Transport-Security header"
bad=$(ct curl -sS --cacert /tmp/ca.crt -o /dev/null -w '%{http_code}' \
  -H 'content-type: application/json' -d '{"user":"admin","password":"wrong"}' "https://$https/api/v1/login")
[ "$bad" = 401 ] || fail "a wrong password answered $bad, not 401"
echo "login 200 with a Secure cookie and HSTS over https; wrong password 401"

step "systemctl reload tgw (SIGHUP: log.level info -> debug)"
conf debug | ct tee /etc/tgw/gateway.toml >/dev/null
ct systemctl reload tgw || fail "systemctl reload"
reloaded() { ct journalctl -u tgw --no-pager -o cat | grep 'configuration reloaded' | grep -q 'applied=log.level'; }
until_ok 15 reloaded || fail "no 'configuration reloaded … applied=log.level' after reload"
[ "$(ct systemctl show -P MainPID tgw)" = "$pid" ] || fail "reload restarted the process"
[ "$(ct systemctl show -P NRestarts tgw)" = 0 ] || fail "tgw was restarted (watchdog?)"
echo "reloaded in place (MainPID $pid); WATCHDOG=1 pings arrive, no restarts"

step "dpkg -i again (the upgrade path: prerm upgrade, postinst configure OLD)"
ct dpkg -i --force-confold /root/tgw.deb < /dev/null > "$work/dpkg-upgrade.log" 2>&1 \
  || { cat "$work/dpkg-upgrade.log" >&2; fail "dpkg -i (upgrade)"; }
ct grep -q 'site = "systemd-test"' /etc/tgw/gateway.toml || fail "the upgrade replaced the edited conffile"
[ "$(ct systemctl show -P ActiveState tgw)" = active ] || fail "tgw not active after the upgrade"
pid2=$(ct systemctl show -P MainPID tgw)
[ "$pid2" != "$pid" ] || fail "postinst did not restart tgw on upgrade"
code=$(ct curl -sS --cacert /tmp/ca.crt -o /dev/null -w '%{http_code}' \
  -H 'content-type: application/json' -d "{\"user\":\"admin\",\"password\":\"$pw\"}" \
  "https://$https/api/v1/login")
[ "$code" = 200 ] || fail "after the upgrade the login answered $code (data or certificate lost?)"
echo "upgraded: conffile kept, restarted (MainPID $pid -> $pid2), same certificate, admin logs in"

step "systemctl stop tgw"
timeout 40 nsenter -t "$sd" -m -u -n -p -C chroot /proc/1/root systemctl stop tgw || fail "systemctl stop"
[ "$(ct systemctl show -P ActiveState tgw)" = inactive ] || fail "tgw still $(ct systemctl show -P ActiveState tgw)"
[ "$(ct systemctl show -P Result tgw)" = success ] || fail "stop result $(ct systemctl show -P Result tgw)"
echo "stopped, result success"

step "dpkg --purge tgw"
ct dpkg --purge tgw > "$work/dpkg-purge.log" 2>&1 || { cat "$work/dpkg-purge.log" >&2; fail "dpkg --purge"; }
ct test -e /var/lib/tgw && fail "/var/lib/tgw left after purge"
ct test -e /etc/tgw && fail "/etc/tgw left after purge"
ct getent passwd tgw >/dev/null && fail "user tgw left after purge"
ct test -e /lib/systemd/system/tgw.service && fail "unit left after purge"
echo "purged: no /var/lib/tgw, /etc/tgw, user or unit left"
echo "PASS"
