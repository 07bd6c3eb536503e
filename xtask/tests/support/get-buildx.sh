#!/usr/bin/env bash
# Puts Debian 13's docker-buildx (a static CLI plugin) into DIR/cli-plugins/, so that
# DOCKER_CONFIG=DIR builds with BuildKit. Debian 12 has no such package.
set -euo pipefail
dest=${1:?usage: get-buildx.sh DOCKER_CONFIG_DIR}
plugin="$dest/cli-plugins/docker-buildx"
if [ -x "$plugin" ] && "$plugin" version >/dev/null 2>&1; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$(dirname "$0")/trixie-debs.sh" "$work/root" docker-buildx
mkdir -p "$dest/cli-plugins"
install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-buildx" "$plugin.partial"
mv "$plugin.partial" "$plugin"
"$plugin" version
