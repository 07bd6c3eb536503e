#!/usr/bin/env bash
# Unpacks Debian 13 (trixie) packages into DIR, fetched from the archive the system
# already uses with a private source list and private apt state: the system's apt
# configuration and installed packages are left as they are.
#   trixie-debs.sh DIR PACKAGE...
set -euo pipefail
dest=${1:?usage: trixie-debs.sh DIR PACKAGE...}
shift
[ $# -gt 0 ] || { echo "usage: trixie-debs.sh DIR PACKAGE..." >&2; exit 2; }
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
  echo "trixie-debs: apt-get update of $uri trixie failed:" >&2
  cat "$work/update.log" >&2
  exit 1
fi
(cd "$work" && "${apt[@]}" download "$@" >"$work/download.log" 2>&1) || {
  echo "trixie-debs: apt-get download $* (trixie) failed:" >&2
  cat "$work/download.log" >&2
  exit 1
}
mkdir -p "$dest"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$dest"
done
