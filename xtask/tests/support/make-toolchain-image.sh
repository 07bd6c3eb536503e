#!/usr/bin/env bash
# Makes NAME, a Debian bookworm image with make and g++, from Debian's archive (nothing
# can be pulled): debootstrap --variant=minbase into a temporary directory, then
# docker import. Does nothing when the engine already has NAME.
set -euo pipefail
name=${1:?usage: make-toolchain-image.sh NAME}
if docker image inspect "$name" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "make-toolchain-image: debootstrap is missing: apt-get install debootstrap" >&2
  exit 1
}
uri=$("$(dirname "$0")/debian-archive.sh")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
if ! debootstrap --variant=minbase --include=make,g++ bookworm "$root" "$uri" >"$root.log" 2>&1; then
  echo "make-toolchain-image: debootstrap of bookworm from $uri failed:" >&2
  tail -20 "$root.log" >&2
  rm -f "$root.log"
  exit 1
fi
rm -f "$root.log"
tar -C "$root" -c . | docker import - "$name" >/dev/null
echo "made $name"
