#!/usr/bin/env bash
# One-command demo: builds the binaries, finds or starts Postgres and a
# nats-server >= 2.10, enqueues the 1,250-prompt sample, runs two workers on
# simulated models until the batch is done, and prints the per-tier summary.
# No API keys. Re-runnable: each run is a new batch.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.demo
mkdir -p "$STATE" bin
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "building binaries"
go build -o bin/ ./cmd/...

# --- Postgres -----------------------------------------------------------------
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/promptcascade?sslmode=disable}"
if ! bin/cascadectl ping --postgres-only --quiet 2>/dev/null; then
  if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  if command -v psql >/dev/null && ! bin/cascadectl ping --postgres-only --quiet 2>/dev/null; then
    say "creating database promptcascade"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE promptcascade' || true
  fi
fi
bin/cascadectl ping --postgres-only

# --- NATS ---------------------------------------------------------------------
# Use NATS_URL if it points at a server >= 2.10; otherwise start a current
# nats-server, built from the pinned Go module, on a spare port.
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
if ! bin/cascadectl ping --nats-only --quiet 2>/dev/null; then
  say "no nats-server >= 2.10 at $NATS_URL; starting one from the Go module"
  go build -o bin/nats-server github.com/nats-io/nats-server/v2
  if [[ -f $STATE/nats.pid ]] && kill -0 "$(cat $STATE/nats.pid)" 2>/dev/null; then
    kill "$(cat $STATE/nats.pid)" || true; sleep 0.5
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 14222)
  bin/nats-server -a 127.0.0.1 -p "$port" -js -sd "$PWD/$STATE/jetstream" >"$STATE/nats.log" 2>&1 &
  echo $! >"$STATE/nats.pid"
  export NATS_URL="nats://127.0.0.1:$port"
  for _ in $(seq 1 50); do bin/cascadectl ping --nats-only --quiet 2>/dev/null && break; sleep 0.1; done
fi
bin/cascadectl ping

# --- run ----------------------------------------------------------------------
bin/cascadectl migrate
BATCH="demo-$(date +%Y%m%d-%H%M%S)"
say "enqueueing testdata/prompts.jsonl as batch $BATCH"
bin/enqueue --batch "$BATCH" testdata/prompts.jsonl

say "running two workers until the batch is done"
export WORKER_EXIT_WHEN_IDLE=true WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-128}" LOG_LEVEL="${LOG_LEVEL:-warn}"
WORKER_ID=demo-1 bin/worker >"$STATE/worker-1.log" 2>&1 & w1=$!
WORKER_ID=demo-2 bin/worker >"$STATE/worker-2.log" 2>&1 & w2=$!
bin/cascadectl status "$BATCH" --watch --until-done
wait "$w1" "$w2" || { echo "a worker failed; see $STATE/worker-*.log" >&2; exit 1; }

say "summary of batch $BATCH"
bin/cascadectl report "$BATCH"
echo
echo "Try:  psql \"$DATABASE_URL\" -c \"SELECT tier, model_used, count(*), sum(cost_usd) FROM results WHERE batch_id = '$BATCH' GROUP BY 1, 2 ORDER BY 1, 2\""
echo "      bin/cascadectl export $BATCH --format csv | head"
