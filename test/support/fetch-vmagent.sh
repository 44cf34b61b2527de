#!/usr/bin/env bash
# vmagent, for test/e2e/collector-path.test.ts: the stand-in for the OpenTelemetry Collector's metrics path (OTLP in,
# Prometheus names, remote write out), which no package of Debian 12 provides. It comes from Debian 13's
# victoria-metrics package, fetched from deb.debian.org and checked against its SHA-256 (pinned; when the pinned
# version has left the archive, the one Debian 13's index names, the index checked with gpgv against the Debian archive
# keyring), and only vmagent is unpacked, into ${XDG_CACHE_HOME:-~/.cache}/tailguard/: nothing is installed
# system-wide (it would replace nothing, but it is not a Debian 12 package). .ci/run calls this; so can you.
set -euo pipefail
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
pkg=victoria-metrics_1.112.0+ds1-2_amd64.deb
sha256=1d3717f1a8ab5bf690271095dd286730f6fb0761cc8c09c0fc8f529c9838f346
dest=${XDG_CACHE_HOME:-$HOME/.cache}/tailguard/vmagent
if [ -x "$dest/vmagent" ] && "$dest/vmagent" -version >/dev/null 2>&1; then exit 0; fi
[ "$(dpkg --print-architecture 2>/dev/null || echo unknown)" = amd64 ] ||
  { echo "fetch-vmagent.sh: only amd64 is provided for" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() { curl -fsS --retry 2 -o "$2" "$1"; }
if ! fetch "$mirror/pool/main/v/victoriametrics/$pkg" "$tmp/pkg.deb"; then
  # superseded in Debian 13: take the version its signed index names now
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  fetch "$mirror/dists/trixie/InRelease" "$tmp/InRelease"
  gpgv --keyring "$keyring" --output "$tmp/Release" "$tmp/InRelease" 2>/dev/null ||
    { echo "fetch-vmagent.sh: Debian 13's InRelease does not verify against $keyring" >&2; exit 1; }
  index_sha=$(awk '/^SHA256:/{s=1;next} /^[A-Z]/{s=0} s && $3=="main/binary-amd64/Packages.xz"{print $1}' "$tmp/Release")
  fetch "$mirror/dists/trixie/main/binary-amd64/Packages.xz" "$tmp/Packages.xz"
  echo "$index_sha  $tmp/Packages.xz" | sha256sum -c --quiet -
  read -r file sha256 < <(xz -dc "$tmp/Packages.xz" |
    awk '/^Package: /{p=($2=="victoria-metrics")} p&&/^Filename: /{f=$2} p&&/^SHA256: /{print f, $2; exit}')
  [ -n "$file" ] || { echo "fetch-vmagent.sh: Debian 13 has no victoria-metrics package" >&2; exit 1; }
  fetch "$mirror/$file" "$tmp/pkg.deb"
fi
echo "$sha256  $tmp/pkg.deb" | sha256sum -c --quiet - ||
  { echo "fetch-vmagent.sh: the package's SHA-256 is not $sha256" >&2; exit 1; }
dpkg-deb -x "$tmp/pkg.deb" "$tmp/x"
mkdir -p "$dest"
install -m 0755 "$tmp/x/usr/bin/vmagent" "$dest/vmagent"
"$dest/vmagent" -version
