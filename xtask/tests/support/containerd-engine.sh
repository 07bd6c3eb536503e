#!/usr/bin/env bash
# The tests' second Docker engine: Debian 13's dockerd 26 with the containerd image store
# (what Docker 29+ and Docker Desktop use by default), unpacked into STATE_DIR and run
# beside the system's engine without touching it:
# - its own --config-file (the system's /etc/docker/daemon.json would clash), data root,
#   exec root, pidfile, socket and containerd namespaces;
# - inside a network namespace of its own (loopback only): a dockerd in the host's
#   namespace would rewrite the running engine's docker0 bridge. A registry a test needs
#   runs in the same namespace (nsenter --net=/proc/$(cat STATE_DIR/pid)/ns/net ...).
#
#   containerd-engine.sh start STATE_DIR   prints the DOCKER_HOST to use (idempotent)
#   containerd-engine.sh stop STATE_DIR
set -euo pipefail
action=${1:?usage: containerd-engine.sh start|stop STATE_DIR}
state=${2:?usage: containerd-engine.sh start|stop STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)

answers() {
  [ -f "$state/docker-host" ] &&
    timeout 10 docker -H "$(cat "$state/docker-host")" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

stop() {
  if [ -f "$state/pid" ]; then
    pid=$(cat "$state/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$state/pid"
  fi
  if [ -f "$state/exec-root" ]; then
    rm -rf "$(cat "$state/exec-root")"
  fi
  rm -f "$state/docker-host" "$state/exec-root"
}

case $action in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: containerd-engine.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac

if answers; then
  cat "$state/docker-host"
  exit 0
fi
stop

root="$state/root"
if [ ! -x "$root/usr/sbin/dockerd" ]; then
  rm -rf "$root.partial"
  "$(dirname "$0")/trixie-debs.sh" "$root.partial" docker.io containerd runc tini >&2
  # trixie's runc needs a newer C library than Debian 12's: the system's runc (the
  # running engine's own) serves then; containerd and dockerd are static enough.
  for runc in "$root.partial/usr/bin/runc" "$root.partial/usr/sbin/runc"; do
    if [ -e "$runc" ] && ! "$runc" --version >/dev/null 2>&1; then rm -f "$runc"; fi
  done
  mv "$root.partial" "$root"
fi
PATH="$root/usr/bin:$root/usr/sbin:$PATH"
command -v runc >/dev/null || {
  echo "containerd-engine: no runc that runs here: apt-get install runc" >&2
  exit 1
}

# Sockets have a 108-byte path limit: the exec root (containerd's socket, the engine's)
# lives in a fresh short private directory, named in $state/exec-root.
exec_root=$(mktemp -d /tmp/fxe.XXXXXX)
echo "$exec_root" >"$state/exec-root"
host="unix://$exec_root/docker.sock"
cat >"$state/daemon.json" <<'JSON'
{"features": {"containerd-snapshotter": true}}
JSON
setsid unshare --net bash -c 'ip link set lo up && exec "$@"' engine \
  dockerd --config-file "$state/daemon.json" \
  --data-root "$state/data" --exec-root "$exec_root/exec" --pidfile "$state/pid" \
  -H "$host" --containerd-namespace fate-xtask-tests --containerd-plugins-namespace fate-xtask-tests-plugins \
  --iptables=false --ip-masq=false --ip-forward=false --bridge=none \
  </dev/null >"$state/dockerd.log" 2>&1 &
echo "$host" >"$state/docker-host"
for _ in $(seq 120); do
  if answers; then
    echo "$host"
    exit 0
  fi
  sleep 0.5
done
echo "containerd-engine: dockerd did not answer on $host within 60 s; its log ($state/dockerd.log) ends:" >&2
tail -n 30 "$state/dockerd.log" >&2
stop
exit 1
