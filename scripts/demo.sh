#!/usr/bin/env bash
# make demo: build and activate the default image, start the master, boot a virtual node,
# wait until it is discovered, then show its facts and boot timeline.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DATA=${LIVESTRAP_DATA_DIR:-/var/lib/livestrap}
PORT=${LIVESTRAP_DEMO_PORT:-8080}
URL=http://127.0.0.1:$PORT
export LIVESTRAP_MASTER=$URL LIVESTRAP_DATA_DIR=$DATA COLUMNS=${COLUMNS:-160}
step() { printf '\n\033[1m== %s\033[0m (%ss)\n' "$1" "$SECONDS"; }

step "1/4 build and activate the default image (reused when nothing changed)"
$BIN/livestrap build --activate

step "2/4 start the master on $URL"
if curl -fsS "$URL/healthz" >/dev/null 2>&1; then
    echo "a master is already running on $URL"
else
    nohup $BIN/livestrap serve --listen "127.0.0.1:$PORT" >"$DATA/master.log" 2>&1 &
    echo $! >"$DATA/master.pid"
    for _ in $(seq 1 60); do curl -fsS "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
    curl -fsS "$URL/healthz" >/dev/null || { cat "$DATA/master.log"; exit 1; }
    echo "master pid $(cat "$DATA/master.pid"), log $DATA/master.log"
fi

step "3/4 boot a virtual node (PXE, BIOS) and wait until it registers"
$BIN/livestrap vm stop >/dev/null
# stdout: the registered node's id (progress goes to stderr)
node=$($BIN/livestrap vm boot --name demo-node --serial DEMO-0001 --disks 4G,2G --detach \
    --timeout 1800 -q)

step "4/4 the inventory"
$BIN/livestrap nodes list
echo; echo "facts of $node:"
$BIN/livestrap nodes show "$node"
echo; echo "boot timeline:"
$BIN/livestrap nodes timeline "$node"
cat <<MSG

web:      $URL/ui/  (log in with the admin token)
API:      $URL  (docs: $URL/docs)
token:    $DATA/admin.token   e.g. curl -H "Authorization: Bearer \$(cat $DATA/admin.token)" $URL/api/v1/nodes
console:  $DATA/vms/demo-node/console.log
stop:     make demo-stop   (stops the virtual node and the master)
MSG
