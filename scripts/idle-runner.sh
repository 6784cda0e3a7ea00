#!/usr/bin/env bash
# What an idle runner asks of Redis in 60 seconds: a private Redis on port 6399, one
# `conveyor serve` on SQLite, one registered `conveyor-runner` with nothing to do, and
# `redis-cli monitor` counting commands. Needs the release binaries:
#   cargo build --release -p conveyor -p conveyor-runner && scripts/idle-runner.sh
set -u
cd "$(dirname "$0")/.."
B=target/release
D=$(mktemp -d)
redis-server --port 6399 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --logfile "$D/redis.log"
sleep 0.5
CONVEYOR_ADMIN_TOKEN=idle-admin-token-0001 CONVEYOR_RUNNER_TOKEN=idle-runner-token-001 \
  $B/conveyor serve --listen 127.0.0.1:18099 --database-url "sqlite://$D/c.db" --data-dir "$D" \
  --redis-url redis://127.0.0.1:6399 > "$D/serve.log" 2>&1 &
SERVE=$!
sleep 1
$B/conveyor-runner --server http://127.0.0.1:18099 --redis-url redis://127.0.0.1:6399 \
  --fleet default --token idle-runner-token-001 --name idle > "$D/runner.log" 2>&1 &
RUNNER=$!
sleep 2 # registration and the first read
timeout 60 redis-cli -p 6399 monitor > "$D/monitor.log"
echo "Redis commands in 60 s, runner idle:"
grep -v '^OK' "$D/monitor.log" | awk '{print $4}' | tr -d '"' | sort | uniq -c
kill "$RUNNER" "$SERVE"
redis-cli -p 6399 shutdown nosave > /dev/null 2>&1
rm -rf "$D"
