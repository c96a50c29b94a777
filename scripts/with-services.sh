#!/usr/bin/env bash
# Runs a command with the real Kafka broker and Redis up, then stops them:
#   scripts/with-services.sh go test ./...
# The command sees KAFKA_BROKERS and REDIS_ADDR. Services already running
# (from an earlier `scripts/services.sh up`) are used and left running.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=0
if ! "$here/services.sh" env >/dev/null 2>&1; then
  started=1
fi
exports="$("$here/services.sh" up)"
eval "$exports"
if [ "$started" = 1 ]; then
  trap '"$here/services.sh" down >&2' EXIT
fi
"$@"
