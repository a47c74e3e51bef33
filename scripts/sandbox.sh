#!/usr/bin/env bash
# Install, start the built-in sandbox district (Google + Graph emulators, local network sites), and run the
# main job against it: validate, plan, apply, re-plan (no changes), the nightly lockdown, the maintenance
# windows and queue, and the journal.
# SANDBOX_GOOGLE_PORT / SANDBOX_GRAPH_PORT (default 8801 / 8803) move the emulators; orchestrator.yaml must point
# at the same ports. Only the base install is needed (no vendor Ansible collections: the sample has no such gear).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
ORCH=".venv/bin/orchestrator"
STATE=".orchestrator/sandbox"
rm -rf "$STATE" .orchestrator/sandbox-network
mkdir -p "$STATE"
export ORCHESTRATOR_ACTOR="${ORCHESTRATOR_ACTOR:-sandbox-demo}"
J=(--journal "$STATE/journal.db")
GOOGLE_PORT="${SANDBOX_GOOGLE_PORT:-8801}"
GRAPH_PORT="${SANDBOX_GRAPH_PORT:-8803}"
for port in "$GOOGLE_PORT" "$GRAPH_PORT"; do
  grep -q "127.0.0.1:$port/" orchestrator.yaml || {
    echo "orchestrator.yaml has no endpoint on 127.0.0.1:$port/; point it at the sandbox ports" >&2
    exit 1
  }
done

"$ORCH" sandbox --devices "${SANDBOX_DEVICES:-120}" --google-port "$GOOGLE_PORT" --graph-port "$GRAPH_PORT" \
  > "$STATE/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "Graph emulator" "$STATE/sandbox.log" 2>/dev/null && break
  kill -0 $SANDBOX_PID 2>/dev/null || { cat "$STATE/sandbox.log"; exit 1; }
  sleep 0.2
done
cat "$STATE/sandbox.log"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "orchestrator validate"
"$ORCH" "${J[@]}" validate
step "orchestrator plan --out $STATE/plan.json"
"$ORCH" "${J[@]}" plan --out "$STATE/plan.json"
step "orchestrator apply $STATE/plan.json"
"$ORCH" "${J[@]}" apply "$STATE/plan.json"
step "orchestrator plan   (a second plan: nothing left to change)"
"$ORCH" "${J[@]}" plan
step "orchestrator lockdown   (the nightly lost-device job)"
"$ORCH" "${J[@]}" lockdown
step "orchestrator windows --days 7   (when disruptive work may run)"
"$ORCH" "${J[@]}" windows --days 7
step "orchestrator maintenance run   (reimages run only inside an open window; otherwise they wait)"
"$ORCH" "${J[@]}" maintenance run
step "orchestrator journal"
"$ORCH" "${J[@]}" journal
printf '\nJournal: %s/journal.db   Plan: %s/plan.json   Reports: .orchestrator/reports/\n' "$STATE" "$STATE"
