#!/usr/bin/env bash
# Puts Debian 13's docker-buildx (a static CLI plugin) into DIR/cli-plugins/, so that
# DOCKER_CONFIG=DIR builds with BuildKit. Debian 12 has no such package; this fetches
# trixie's from the archive the system already uses, with a private source list and
# private apt state: the system's apt configuration and packages are left as they are.
set -euo pipefail
dest=${1:?usage: get-buildx.sh DOCKER_CONFIG_DIR}
plugin="$dest/cli-plugins/docker-buildx"
if [ -x "$plugin" ] && "$plugin" version >/dev/null 2>&1; then
  exit 0
fi
uri=$("$(dirname "$0")/debian-archive.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts"
cat >"$work/trixie.sources" <<SOURCES
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt=(apt-get -q
  -o Dir::Etc::sourcelist="$work/trixie.sources"
  -o Dir::Etc::sourceparts="$work/parts"
  -o Dir::State::Lists="$work/lists"
  -o Dir::Cache="$work/cache"
  -o APT::Sandbox::User="$(id -un)")
if ! "${apt[@]}" update >"$work/update.log" 2>&1; then
  echo "get-buildx: apt-get update of $uri trixie failed:" >&2
  cat "$work/update.log" >&2
  exit 1
fi
(cd "$work" && "${apt[@]}" download docker-buildx >"$work/download.log" 2>&1) || {
  echo "get-buildx: apt-get download docker-buildx (trixie) failed:" >&2
  cat "$work/download.log" >&2
  exit 1
}
dpkg-deb -x "$work"/docker-buildx_*.deb "$work/root"
mkdir -p "$dest/cli-plugins"
install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-buildx" "$plugin.partial"
mv "$plugin.partial" "$plugin"
"$plugin" version
