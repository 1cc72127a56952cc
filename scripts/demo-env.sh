# Sourced by scripts/demo.sh and scripts/router-demo.sh (from the repository root,
# with STATE and say set): finds or starts Postgres and a nats-server >= 2.10 and
# exports DATABASE_URL and NATS_URL. A nats-server this script started is reused by
# the next demo while it runs (its URL is kept in $STATE/nats.url).

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
# Use NATS_URL if it points at a server >= 2.10, else the one an earlier demo
# started if it still runs; otherwise start a current nats-server, built from the
# pinned Go module, on a spare port.
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
if ! bin/cascadectl ping --nats-only --quiet 2>/dev/null; then
  if [[ -f $STATE/nats.pid && -f $STATE/nats.url ]] && kill -0 "$(cat "$STATE/nats.pid")" 2>/dev/null &&
    NATS_URL="$(cat "$STATE/nats.url")" bin/cascadectl ping --nats-only --quiet 2>/dev/null; then
    NATS_URL="$(cat "$STATE/nats.url")"
    say "using the nats-server an earlier demo started at $NATS_URL"
  else
    say "no nats-server >= 2.10 at $NATS_URL; starting one from the Go module"
    go build -o bin/nats-server github.com/nats-io/nats-server/v2
    if [[ -f $STATE/nats.pid ]] && kill -0 "$(cat "$STATE/nats.pid")" 2>/dev/null; then
      kill "$(cat "$STATE/nats.pid")" || true; sleep 0.5
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 14222)
    bin/nats-server -a 127.0.0.1 -p "$port" -js -sd "$PWD/$STATE/jetstream" >"$STATE/nats.log" 2>&1 &
    echo $! >"$STATE/nats.pid"
    NATS_URL="nats://127.0.0.1:$port"
    echo "$NATS_URL" >"$STATE/nats.url"
    for _ in $(seq 1 50); do bin/cascadectl ping --nats-only --quiet 2>/dev/null && break; sleep 0.1; done
  fi
  export NATS_URL
fi
bin/cascadectl ping
