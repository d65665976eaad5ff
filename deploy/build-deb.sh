#!/bin/sh
# Builds tgw_VERSION_ARCH.deb with dpkg-deb (docs/deploy.md).
#   deploy/build-deb.sh [BINARY] [OUTDIR]
# BINARY defaults to target/release/tgw (cargo build --release -p tgw);
# CI passes the debug binary to keep the test cheap. The binary is stripped.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=${1:-$top/target/release/tgw}
out=${2:-$top/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
[ -x "$bin" ] || { echo "build-deb: no binary at $bin (cargo build --release -p tgw)" >&2; exit 1; }
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
  "$stage/etc/tgw" "$stage/usr/share/doc/tgw/examples"
install -m 0755 "$bin" "$stage/usr/bin/tgw"
strip --strip-all "$stage/usr/bin/tgw"
install -m 0644 "$here/tgw.service" "$stage/lib/systemd/system/tgw.service"
install -m 0640 "$here/debian/gateway.toml" "$stage/etc/tgw/gateway.toml"
install -m 0644 "$top/docs/deploy.md" "$stage/usr/share/doc/tgw/deploy.md"
install -m 0644 "$top/config/gateway.example.toml" "$top/config/timetable.example.toml" "$top/config/speakers.example.csv" \
  "$here/prometheus/tgw-rules.yml" "$here/grafana/tgw-township.json" \
  "$stage/usr/share/doc/tgw/examples/"
printf 'Township Gateway\nLicense: MIT OR Apache-2.0\n' > "$stage/usr/share/doc/tgw/copyright"
install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$stage/DEBIAN/"
install -m 0644 "$here/debian/conffiles" "$stage/DEBIAN/conffiles"
size_kb=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: tgw
Version: $version
Architecture: $arch
Maintainer: Township Gateway maintainers <tgw@example.invalid>
Section: net
Priority: optional
Installed-Size: $size_kb
Depends: adduser, libc6 (>= 2.36), ca-certificates, libopus0
Recommends: espeak-ng
Description: Township Gateway: cameras, loudspeakers and the uplink of one township
 Discovers a township's ONVIF cameras and loudspeakers, checks their health,
 plays scheduled and emergency broadcasts and reports to the governance
 centre over MQTT. Runs as the systemd service tgw.
CONTROL
deb="$out/tgw_${version}_${arch}.deb"
# CI builds with TGW_DEB_FAST=1: gzip -1 instead of xz (seconds, not minutes).
if [ "${TGW_DEB_FAST:-}" = 1 ]; then z="-Zgzip -z1"; else z="-Zxz"; fi
# shellcheck disable=SC2086
dpkg-deb $z --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
