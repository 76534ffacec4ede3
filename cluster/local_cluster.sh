#!/usr/bin/env bash
# A local multi-node Ray cluster on loopback: a head and N worker nodes on this machine, each a
# separate raylet with its own ports and temp dir. For trying `lrl submit` and multi-node
# behaviour without a real cluster.
#
#   cluster/local_cluster.sh start 2      # head + 2 workers; prints the address and token exports
#   cluster/local_cluster.sh status
#   cluster/local_cluster.sh stop         # stops only the processes this script started
#
# Security: the dashboard/job server binds 127.0.0.1 and token authentication stays ON
# (RAY_AUTH_MODE=token). The token comes from RAY_AUTH_TOKEN_PATH when set, otherwise a fresh one
# is written to $LRL_CLUSTER_DIR/auth_token (mode 600); clients export RAY_AUTH_TOKEN_PATH to it.
#
# `ray stop` would kill every Ray process of this user (other people's too on a shared machine),
# so `stop` kills the recorded process ids and the processes of this cluster's own temp dir.
#
# Settings (environment): LRL_CLUSTER_DIR (state + Ray temp dir, default /tmp/lrl-cluster-$USER;
# keep it short: Ray's socket paths must stay under 107 bytes), LRL_CLUSTER_PORT (GCS port, default
# 6380; every other port is derived from it), LRL_CLUSTER_DASHBOARD_PORT (default 8265),
# LRL_CLUSTER_CPUS (CPUs per node, default 1), LRL_CLUSTER_OBJECT_STORE_MB (per node, default 500).
set -euo pipefail

DIR=${LRL_CLUSTER_DIR:-/tmp/lrl-cluster-${USER:-$(id -un)}}
PORT=${LRL_CLUSTER_PORT:-6380}
DASH=${LRL_CLUSTER_DASHBOARD_PORT:-8265}
CPUS=${LRL_CLUSTER_CPUS:-1}
STORE=$(( ${LRL_CLUSTER_OBJECT_STORE_MB:-500} * 1024 * 1024 ))
PY=${PYTHON:-python3}
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token

node_ports() {  # node index -> the flags that keep its ports apart from the other nodes'
  local i=$1 b=$(( PORT + 100 + $1 * 10 )) w=$(( PORT + 1000 + $1 * 200 ))
  echo "--node-manager-port $b --object-manager-port $((b+1)) --dashboard-agent-listen-port $((b+2))" \
       "--dashboard-agent-grpc-port $((b+3)) --metrics-export-port $((b+4)) --runtime-env-agent-port $((b+5))" \
       "--min-worker-port $w --max-worker-port $((w+199))"
}

# Every process of this cluster: the ones naming its dir (state and temp dirs) or its GCS port, and
# their children.
our_pids() {
  "$PY" - "$DIR/" "$PORT" <<'PYEOF'
import os, sys, psutil
tmp, port = sys.argv[1], sys.argv[2]
roots = set()
for p in psutil.process_iter(["pid", "cmdline"]):
    if p.pid in (os.getpid(), os.getppid()):
        continue
    cmd = " ".join(p.info["cmdline"] or [])
    if tmp in cmd or ("ray.util.client.server" in cmd and f":{port} " in cmd + " "):
        roots.add(p)
pids = set()
for p in roots:
    pids.add(p.pid)
    try:
        pids.update(c.pid for c in p.children(recursive=True))
    except psutil.Error:
        pass
print(" ".join(str(x) for x in sorted(pids)))
PYEOF
}

# Every port the head and N workers will bind must be free now. A taken one makes that node's raylet
# or GCS abort while `ray start` waits 30 s and then says only "timed out during startup". Ports in
# the kernel's ephemeral range are warned about: an outgoing connection can take one mid-start.
check_ports() {
  "$PY" - "$PORT" "$DASH" "$1" <<'PYEOF'
import socket, sys
try:
    port, dash, n = map(int, sys.argv[1:])
except ValueError:
    sys.exit(f"LRL_CLUSTER_PORT, LRL_CLUSTER_DASHBOARD_PORT and N must be whole numbers (got {sys.argv[1:]})")
want = {}
kinds = ["node manager", "object manager", "dashboard agent", "dashboard agent grpc", "metrics export",
         "runtime env agent"]
clash = []
def claim(p, what):  # two roles on one port (the dashboard port inside a node's range) is a clash
    if p in want:
        clash.append(f"{p} ({want[p]} and {what})")
    want[p] = what
claim(port, "GCS")
claim(port + 1, "Ray client server")
claim(dash, "dashboard")
for i in range(n + 1):
    base, workers = port + 100 + i * 10, port + 1000 + i * 200
    for k, kind in enumerate(kinds):
        claim(base + k, f"node {i} {kind}")
    for p in range(workers, workers + 200):
        claim(p, f"node {i} workers")
if not 1 <= dash <= 65535:
    sys.exit(f"LRL_CLUSTER_DASHBOARD_PORT={dash} is no port (1-65535)")
if min(want) < 1 or max(want) > 65535:
    sys.exit(f"LRL_CLUSTER_PORT={port} gives ports {min(want)}-{max(want)}, outside 1-65535: pick another")
if clash:
    sys.exit(f"ports given two roles: {', '.join(clash[:3])}; pick another LRL_CLUSTER_PORT or "
             "LRL_CLUSTER_DASHBOARD_PORT")
busy = []
for p, what in sorted(want.items()):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Ray's servers: TIME_WAIT is not busy
        try:
            s.bind(("0.0.0.0", p))
        except OSError:
            busy.append(f"{p} ({what})")
if busy:
    more = f" and {len(busy) - 6} more" if len(busy) > 6 else ""
    sys.exit(f"ports in use: {', '.join(busy[:6])}{more}; pick another LRL_CLUSTER_PORT "
             "(and LRL_CLUSTER_DASHBOARD_PORT)")
try:
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except (OSError, ValueError):
    sys.exit(0)
first, last = min(want), max(want)
if first <= hi and last >= lo:
    print(f"warning: ports {first}-{last} overlap the kernel's ephemeral range {lo}-{hi}: an outgoing "
          "connection can take one while the nodes start; an LRL_CLUSTER_PORT well below "
          f"{lo - (last - first)} avoids it", file=sys.stderr)
PYEOF
}

# A node that did not come up: its `ray start` output, then the error lines of its own raylet.out
# and gcs_server.out (Ray's "timed out during startup" names no cause; a raylet that crashed, e.g.
# on a taken port, says why there), then stop everything this start began.
node_failed() {
  local name=$1 tmp=$2 f
  echo "Ray $name node failed to start (log: $DIR/$name.log):" >&2
  cat "$DIR/$name.log" >&2
  for f in raylet.out gcs_server.out; do
    [ -s "$tmp/session_latest/logs/$f" ] || continue
    # Ray's own log lines carry a severity letter after the pid: keep errors, checks and fatals.
    echo "--- last errors in $tmp/session_latest/logs/$f:" >&2
    grep -E '^\[[^]]* [ECF] [0-9]+ [0-9]+\]' "$tmp/session_latest/logs/$f" | tail -n 5 >&2 || echo "(none)" >&2
  done
  stop >&2 || true
}

start() {
  local n=${1:-1}
  mkdir -p "$DIR"
  if [ -s "$DIR/pids" ]; then echo "a cluster from $DIR seems to run; '$0 stop' first" >&2; exit 1; fi
  check_ports "$n" || exit 1
  if [ -z "${RAY_AUTH_TOKEN_PATH:-}" ] && [ -z "${RAY_AUTH_TOKEN:-}" ]; then
    export RAY_AUTH_TOKEN_PATH="$DIR/auth_token"
    [ -s "$RAY_AUTH_TOKEN_PATH" ] || (umask 077; "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$RAY_AUTH_TOKEN_PATH")
  fi
  local common="--node-ip-address 127.0.0.1 --num-cpus $CPUS --object-store-memory $STORE --disable-usage-stats"
  # shellcheck disable=SC2046,SC2086
  ray start --head --port "$PORT" --dashboard-host 127.0.0.1 --dashboard-port "$DASH" \
    --ray-client-server-port $((PORT + 1)) $(node_ports 0) --temp-dir "$DIR/ray" $common > "$DIR/head.log" 2>&1 \
    || { node_failed head "$DIR/ray"; exit 1; }
  for i in $(seq 1 "$n"); do
    # shellcheck disable=SC2046,SC2086
    # Its own temp dir: nodes sharing one would share runtime_resources/, and one node's
    # runtime-env garbage collection would delete a working_dir another node's job still runs in.
    ray start --address "127.0.0.1:$PORT" $(node_ports "$i") --temp-dir "$DIR/ray-w$i" $common \
      > "$DIR/worker-$i.log" 2>&1 \
      || { node_failed "worker-$i" "$DIR/ray-w$i"; exit 1; }
  done
  our_pids > "$DIR/pids"
  echo "Ray cluster up: head + $n worker(s), $(wc -w < "$DIR/pids") processes (ids in $DIR/pids)"
  echo "  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=${RAY_AUTH_TOKEN_PATH:-<your token file>}"
  # Every node is this machine: local absolute paths are paths every node sees. First the packaged
  # quickstart (about 2 min on 2 CPUs; its sample travels with the upload), then a recipe, which
  # on a laptop's CPUs runs for hours: the one line printed before sent users straight to it.
  echo "  lrl submit platform/lrl/resources/quickstart.yaml output.root=$DIR/runs/quickstart" \
       "--address http://127.0.0.1:$DASH    # from the repository root; ~2 min"
  echo "  lrl submit jobs/wikiann_ug.yaml data.root=$(cd "$(dirname "$0")/../.." && pwd)/shared/data" \
       "output.root=$DIR/runs --address http://127.0.0.1:$DASH    # a real recipe: hours on CPUs"
  echo "  $0 stop"
}

stop() {
  # Several rounds: a raylet that is being stopped can still start a worker (or a job driver can
  # fork) after the first scan, and such a late child would outlive a single kill pass.
  local pids total=0 round
  for round in 1 2 3 4; do
    pids="$( [ "$round" = 1 ] && cat "$DIR/pids" 2>/dev/null || true) $(our_pids)"
    pids=$(echo "$pids" | tr ' ' '\n' | sort -u | grep -v '^$' || true)
    [ -z "$pids" ] && break
    total=$(( total + $(echo "$pids" | wc -w) ))
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 20); do
      alive=""
      for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
      [ -z "$alive" ] && break
      sleep 0.5
    done
    # shellcheck disable=SC2086
    [ -n "${alive:-}" ] && kill -KILL $alive 2>/dev/null || true
    sleep 0.5
  done
  rm -f "$DIR/pids"
  left=$(our_pids)
  if [ -n "$left" ]; then echo "cluster processes of $DIR still running after 4 rounds: $left" >&2; return 1; fi
  if [ "$total" = 0 ]; then echo "no cluster processes of $DIR found"; else echo "stopped $total processes of the cluster in $DIR"; fi
}

status() {
  local pids; pids=$(our_pids)
  if [ -z "$pids" ]; then echo "not running ($DIR)"; return 1; fi
  echo "running: $(echo "$pids" | wc -w) processes; dashboard http://127.0.0.1:$DASH"
}

case "${1:-}" in
  start) start "${2:-1}" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start N | stop | status" >&2; exit 2 ;;
esac
