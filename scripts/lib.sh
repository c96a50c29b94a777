# shellcheck shell=bash
# Helpers shared by scripts/services.sh and scripts/cluster3.sh, which source
# this file and define log MESSAGE and die MESSAGE (to stderr) before calling.

# pid_running PID: the process exists and is not a zombie (an exited daemon
# whose parent, here often PID 1, has not reaped it yet).
pid_running() {
  local st
  st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  st="${st##*) }"
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# wait_or_kill PID NAME GRACE: wait up to GRACE seconds for PID to exit (after
# the caller's signal), then SIGKILL it and wait for that.
wait_or_kill() {
  local pid="$1" name="$2" grace="$3" i
  for ((i = 0; i < grace * 10; i++)); do
    pid_running "$pid" || return 0
    sleep 0.1
  done
  log "$name did not stop in ${grace}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do pid_running "$pid" || return 0; sleep 0.1; done
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_used PORT: PORT appears as a local port of any TCP socket (listening,
# connected or in TIME_WAIT) in /proc/net/tcp{,6}, or accepts connections.
port_used() {
  local hex line f
  hex="$(printf '%04X' "$1")"
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    while read -r _ line _; do
      [ "${line##*:}" = "$hex" ] && return 0
    done <"$f"
  done
  port_open "$1"
}

# free_port: a free port in 20000-32767 (below Linux's ephemeral range, so
# outgoing connections won't take it), not one already picked in this run
# (PICKED: the picked ports, space-separated with a space at each end).
PICKED=" "
free_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((20000 + RANDOM % 12768))
    case "$PICKED" in *" $p "*) continue ;; esac
    if ! port_used "$p"; then PICKED="$PICKED$p "; echo "$p"; return 0; fi
  done
  die "no free port found"
}

# kafka_cluster_id: a new KRaft cluster id, 16 random bytes as URL-safe base64
# without padding (a Kafka Uuid); one starting with '-' would be taken for an
# option, so it draws again.
kafka_cluster_id() {
  local cid=-
  while [[ "$cid" == -* ]]; do
    cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  echo "$cid"
}

# kafka_api_answers PORT: send an ApiVersions v0 request (correlation id 7)
# over bash /dev/tcp and check that a response with that correlation id comes
# back.
kafka_api_answers() {
  local got
  got="$(
    exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    # size=10 | api_key=18 | api_version=0 | correlation_id=7 | client_id=""(len 0)
    printf '\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x07\x00\x00' >&3
    timeout 5 head -c 8 <&3 | od -An -tx1 | tr -d ' \n'
  )" || return 1
  [ "${got:8:8}" = 00000007 ]
}

# write_kafka_log4j2 FILE STATE_LEVEL: log4j2 configuration (Kafka 4.x) that
# logs everything to stdout, the state-change logger at STATE_LEVEL and the
# request logger at WARN.
write_kafka_log4j2() {
  cat >"$1" <<EOF
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = $2
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}
