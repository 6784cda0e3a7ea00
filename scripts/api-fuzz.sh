#!/usr/bin/env bash
# Fuzzes the JSON API with schemathesis (docs/api-fuzzing.md): a fresh `conveyor serve` on a
# Postgres database of its own (Postgres refuses what SQLite takes, a NUL in text), seeded
# with a product, a build and a registered runner, then two bounded runs against
# /api/openapi.json with the admin token: one generating every parameter, one with the
# seeded product, belt and ids in the paths so that bodies and queries reach real data.
# Exits non-zero if schemathesis reports a server error (or any failure of its checks).
#   scripts/api-fuzz.sh            # FUZZ_EXAMPLES=20 per operation, FUZZ_SECONDS=60 per run
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${FUZZ_EXAMPLES:-20}
SECONDS_PER_RUN=${FUZZ_SECONDS:-60}
PG=${CONVEYOR_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}
VENV=target/schemathesis
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi
cargo build -q -p conveyor
D=$(mktemp -d)
DB=conveyor_fuzz_$$
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
psql "$PG" -qc "CREATE DATABASE $DB"
export FUZZ_ADMIN=fuzz-admin-$(openssl rand -hex 16) FUZZ_REGISTRATION=fuzz-runner-$(openssl rand -hex 16)
CONVEYOR_ADMIN_TOKEN=$FUZZ_ADMIN CONVEYOR_RUNNER_TOKEN=$FUZZ_REGISTRATION \
  CONVEYOR_DATABASE_URL="${PG%/*}/$DB" CONVEYOR_REDIS_URL=redis://127.0.0.1:6379 \
  CONVEYOR_QUEUE_PREFIX=fuzz-$$ CONVEYOR_LOG=warn \
  target/debug/conveyor serve --listen "127.0.0.1:$PORT" --data-dir "$D" > "$D/serve.log" 2>&1 &
SERVE=$!
cleanup() {
  kill "$SERVE" 2> /dev/null || true
  wait "$SERVE" 2> /dev/null || true
  psql "$PG" -qc "DROP DATABASE IF EXISTS $DB" || true
  rm -rf "$D"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/health" > /dev/null && break; sleep 0.1; done

# The data the second run names: a product, its build and a job run, a runner's own token.
api() { curl -sf -H "Authorization: Bearer $1" -H 'content-type: application/json' "${@:2}"; }
field() { python3 -c "import json, sys; print(eval('json.load(sys.stdin)' + sys.argv[1]))" "$1"; }
yaml=$(python3 -c 'import json; print(json.dumps({"yaml": open("examples/demo/demo.yml").read()}))')
api "$FUZZ_ADMIN" -d "$yaml" "$BASE/api/v1/products" > /dev/null
build=$(api "$FUZZ_ADMIN" -d '{}' "$BASE/api/v1/products/demo/belts/build/builds")
BUILD=$(field '["id"]' <<< "$build")
JOB=$(field '["jobs"][0]["id"]' <<< "$build")
export FUZZ_RUNNER=$(api "$FUZZ_REGISTRATION" -d '{"name": "fuzz", "fleets": ["default"]}' \
  "$BASE/api/v1/runners/register" | field '["token"]')

run() {
  "$VENV/bin/schemathesis" --config-file "$1" run "$BASE/api/openapi.json" \
    --report har --report-har-path "target/api-fuzz/$2.har" \
    --checks not_a_server_error --max-examples "$EXAMPLES" --max-time "$SECONDS_PER_RUN" \
    --seed 12 --generation-database none --no-color --warnings off
}
status=0
mkdir -p target/api-fuzz
echo "== every parameter generated"
run scripts/api-fuzz.toml generated || status=1
echo "== the seeded product demo, belt build, build $BUILD, job run $JOB"
cat > "$D/seeded.toml" <<TOML
$(cat scripts/api-fuzz.toml)

[parameters]
"path.product" = "demo"
"path.belt" = "build"
"path.runid" = "$BUILD"
"path.driver" = "version"
"query.runid" = "$BUILD"

[[operations]]
include-path-regex = "^/api/v1/builds/"
parameters = { "path.id" = "$BUILD" }

[[operations]]
include-path-regex = "^/api/v1/job-runs/"
parameters = { "path.id" = "$JOB" }
TOML
run "$D/seeded.toml" seeded || status=1
if grep -q "internal error" "$D/serve.log"; then
  echo "== the server logged internal errors:"
  grep -o "internal error: .*" "$D/serve.log" | sort | uniq -c | sort -rn | head -20
  status=1
fi
exit $status
