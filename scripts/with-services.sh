#!/usr/bin/env bash
# Runs a command with the real Kafka broker and Redis up, then stops them:
#   scripts/with-services.sh go test ./...
# The command sees KAFKA_BROKERS and REDIS_ADDR. Services that were both
# already running (from an earlier `scripts/services.sh up`) are used and
# left running; otherwise this script starts what is missing and stops both
# when the command ends, fails or is interrupted — and when starting them is
# interrupted (the trap is set before `up`, which leaves nothing half up).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
running="$("$here/services.sh" status 2>/dev/null | grep -c ': running' || true)"
if [ "$running" != 2 ]; then
  trap '"$here/services.sh" down >&2' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
exports="$("$here/services.sh" up)"
eval "$exports"
"$@"
