#!/usr/bin/env bash
# The `release` pipeline of docs/pipelines.md through Conveyor CI's API: the resource type
# `app` with its schema, a pipeline of the Python driver `builder` (builder.py) then the
# Rust driver `deployer` (rust_driver.rs), and the resource `web` at image tag TAG (created,
# or updated if it exists). Prints the run id. Needs curl; CONVEYOR_SERVER and
# CONVEYOR_TOKEN (the admin token) name the orchestrator.
#   examples/drivers/release.sh v1
set -euo pipefail
TAG=${1:-v1}
S=${CONVEYOR_SERVER:?set CONVEYOR_SERVER to the orchestrator URL}
: "${CONVEYOR_TOKEN:?set CONVEYOR_TOKEN to the admin token}"
call() { # METHOD PATH BODY: the answer's body; fails on an error status
  curl -sS --fail-with-body -X "$1" -H "Authorization: Bearer $CONVEYOR_TOKEN" \
    -H 'Content-Type: application/json' "$S$2" -d "$3"
}
call POST /resource-definitions/apply '{"name": "app", "description": "a deployable app",
  "schema": {"type": "object", "required": ["image"], "properties": {"image": {
    "type": "object", "required": ["repo", "tag"], "properties": {
      "repo": {"type": "string"}, "tag": {"type": "string", "pattern": "^v[0-9]+$"}}}}}}' >/dev/null
PIPELINE='{"name": "release", "resource": "app", "description": "build, then deploy",
  "steps": [{"driver": "builder"}, {"driver": "deployer"}]}'
if curl -sf -o /dev/null -H "Authorization: Bearer $CONVEYOR_TOKEN" "$S/pipelines/release"; then
  call PUT /pipelines/release "$PIPELINE" >/dev/null
else
  call POST /pipelines "$PIPELINE" >/dev/null
fi
SPEC="{\"image\": {\"repo\": \"shop\", \"tag\": \"$TAG\"}}"
if curl -sf -o /dev/null -H "Authorization: Bearer $CONVEYOR_TOKEN" "$S/resources/app/web"; then
  ANSWER=$(call PUT /resources/app/web "{\"spec\": $SPEC}")
else
  ANSWER=$(call POST /resources "{\"name\": \"web\", \"resource\": \"app\", \"spec\": $SPEC}")
fi
python3 -c 'import json, sys; print(json.load(sys.stdin)["runid"])' <<<"$ANSWER"
