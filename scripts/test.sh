#!/usr/bin/env bash
# The whole test suite: Foundry (unit, fuzz, invariant), Python against real anvil, and the ape
# tests. Installs whatever is missing first. Under CI=true the invariant suite runs at 10,000
# runs per invariant (FOUNDRY_PROFILE=ci).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1

export PATH="$PWD/node_modules/.bin:$PWD/.venv/bin:$PATH"
export SOLCX_BINARY_PATH="$PWD/.solcx"
if [ "${CI:-}" = "true" ]; then export FOUNDRY_PROFILE=ci; fi

failed=()
step() {  # step NAME CMD...: runs CMD, records a failure; pytest's 5 (no tests) is a failure.
  local name=$1; shift
  printf '\n\033[1m==> %s\033[0m\n' "$name"
  local start=$SECONDS
  "$@"
  local rc=$?
  printf '\033[1m<== %s: exit %s in %ss\033[0m\n' "$name" "$rc" "$((SECONDS - start))"
  [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

step "services (dockerd, PostgreSQL)" scripts/services.sh
# NOTE: forge's fuzzing is CPU-bound on one core for minutes, while the Python suite spends much
# of its time waiting on anvil, dockerd, PostgreSQL and the processes it starts. forge runs beside
# it, at a lower priority so the Python suite's timing is not the one that suffers, and is
# reported (and counted) once the Python suite is done.
forge_log=$(mktemp)
( start=$SECONDS; nice -n 10 forge test >"$forge_log" 2>&1; rc=$?
  echo "$rc $((SECONDS - start))" >"$forge_log.done" ) &
forge_pid=$!
# An interrupted run stops the forge it started (by PID), not only itself.
trap 'pkill -P "$forge_pid" 2>/dev/null; kill "$forge_pid" 2>/dev/null' EXIT
forge_report() {  # prints forge's output, then exits with its status
  cat "$forge_log"
  read -r rc secs <"$forge_log.done"
  printf '(forge ran beside the Python suite for %ss)\n' "$secs"
  rm -f "$forge_log" "$forge_log.done"
  return "$rc"
}
# NOTE: the API suite indexes one long history on its own session anvil; it runs in its own
# pytest session so that no other test's chain activity leaks into what it expects.
step "pytest (Python, real anvil, dockerd, PostgreSQL)" python -m pytest -p no:ape_test tests --ignore=tests/api
wait "$forge_pid"
trap - EXIT
step "forge test (profile ${FOUNDRY_PROFILE:-default})" forge_report
step "pytest tests/api (the API over an indexed chain)" python -m pytest -p no:ape_test tests/api
step "ape test (tests/ape)" ape test tests/ape
step "slither (no high/medium findings)" scripts/slither.sh

if [ ${#failed[@]} -gt 0 ]; then
  printf '\n\033[1;31mFAILED:\033[0m %s\n' "${failed[@]}"
  exit 1
fi
printf '\n\033[1;32mAll test suites passed.\033[0m\n'
