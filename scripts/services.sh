#!/usr/bin/env bash
# Local test services for planflag: a Redis and a single-node Apache Kafka
# (KRaft, combined broker+controller), both on free loopback ports.
#
#   scripts/services.sh up             install what is missing, start both, print exports
#   scripts/services.sh down           stop both, remove the running state (keeps the cache)
#   scripts/services.sh env            print the exports of the running services
#   scripts/services.sh status         say what runs
#   scripts/services.sh restart-kafka  stop the broker, start it again (same port, same data)
#   scripts/services.sh stop-redis     stop Redis (its port stays reserved in the state)
#   scripts/services.sh start-redis    start Redis again on the same port
#
# Typical use (two steps, so that a failed `up` stops a `set -e` script; a bare
# eval "$(...)" would swallow the exit status):
#   exports="$(scripts/services.sh up)" && eval "$exports"   # KAFKA_BROKERS, REDIS_ADDR
# Only the `export ...` lines go to stdout; all progress goes to stderr.
#
# Besides its plaintext listener the broker has two secured ones, so that the
# clients' TLS and SASL settings are tested against a real broker:
# KAFKA_SASL_SSL_BROKERS (TLS, then SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
# as user planflag) and KAFKA_SSL_BROKERS (TLS with a client certificate); and
# Redis answers over TLS too, on REDIS_TLS_ADDR. The test CA, the client's
# certificate and key and the SASL user and password are files in
# SERVICES_TLS_DIR (ca.pem, client.pem, client.key, sasl-user, sasl-password),
# made with openssl at the first start. The broker has an authorizer that
# allows everything no ACL forbids; the plaintext listener is a super user,
# so tests make SASL users and ACLs through it.
#
# Environment:
#   PLANFLAG_SERVICES_DIR  running state (default: <repo>/.services, git-ignored)
#   PLANFLAG_CACHE_DIR     download cache (default: ~/.cache/planflag); a warm cache
#                          lets `up` start in seconds without network
#   PLANFLAG_SERVICES_TIMEOUT  seconds to wait for a service to answer (default 120)
#   PLANFLAG_KAFKA_VERSION override the pinned Kafka version (for experiments only)
set -euo pipefail

# --- Kafka version ------------------------------------------------------------
# The newest release on Maven Central. Kafka 4.0 dropped old protocol versions
# (KIP-896), but a probe with github.com/segmentio/kafka-go v0.4.51 passed on 4.4.0
# (and on 4.0.0 and 3.9.1): Client.CreateTopics and Conn.CreateTopics (4 partitions,
# cleanup.policy=compact), Writer (Hash balancer, acks=all, headers, tombstones),
# per-partition Readers with SetOffset, Conn.ReadLastOffset/ReadOffsets,
# Client.ListOffsets, Client.Metadata, Client.DeleteTopics. If a kafka-go upgrade
# breaks on it, pin the newest version that works (3.x is supported below too).
KAFKA_VERSION="${PLANFLAG_KAFKA_VERSION:-4.4.0}"
# log4j2 + its slf4j 1.x binding, which Kafka 4.x uses (Kafka's pom leaves the
# binding out; without one the broker would log nothing).
LOG4J_VERSION=2.25.5
# Kafka 3.x logs through reload4j (log4j 1 API) instead.
SLF4J1_VERSION=1.7.36
RELOAD4J_VERSION=1.2.25

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
STATE="${PLANFLAG_SERVICES_DIR:-$REPO/.services}"
CACHE="${PLANFLAG_CACHE_DIR:-${HOME:-/root}/.cache/planflag}"
TIMEOUT="${PLANFLAG_SERVICES_TIMEOUT:-120}"

KDIR="$STATE/kafka"          # server.properties, data/, kafka.log, kafka.pid
RDIR="$STATE/redis"          # redis.pid, redis.log (and its empty working dir)
PORTS="$STATE/ports"         # KAFKA_PORT / KAFKA_SASL_SSL_PORT / KAFKA_SSL_PORT / CONTROLLER_PORT / REDIS_PORT / REDIS_TLS_PORT
TLS="$STATE/tls"             # the test CA, the servers' and a client's certificates, the SASL secret
KLIB="$CACHE/kafka-$KAFKA_VERSION/lib"

log() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

# Run as root, or through sudo when not root.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=
apt_install() {
  log "installing $* with apt-get"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq >&2; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- process helpers ------------------------------------------------------------

# alive PIDFILE NAME: the pid in PIDFILE runs and its command line mentions NAME
# (guards against a stale pidfile whose pid was reused).
alive() {
  local pid cmd
  [ -s "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && pid_running "$pid" || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"$2"* ]]
}

# stop_pid PIDFILE NAME GRACE: SIGTERM, wait up to GRACE seconds, then SIGKILL.
stop_pid() {
  local pidfile="$1" name="$2" grace="$3" pid
  if ! alive "$pidfile" "$name"; then rm -f "$pidfile"; return 0; fi
  pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_or_kill "$pid" "$name" "$grace"
  rm -f "$pidfile"
}

# --- ports ------------------------------------------------------------------------

# Load the ports of this state dir, picking new ones for what is missing (or,
# when nothing runs, for a saved port that something else has taken meanwhile).
load_ports() {
  KAFKA_PORT='' KAFKA_SASL_SSL_PORT='' KAFKA_SSL_PORT='' CONTROLLER_PORT='' REDIS_PORT='' REDIS_TLS_PORT=''
  # shellcheck disable=SC1090
  [ -f "$PORTS" ] && . "$PORTS"
  if ! alive "$KDIR/kafka.pid" kafka.Kafka; then
    { [ -n "$KAFKA_PORT" ] && ! port_used "$KAFKA_PORT"; } || KAFKA_PORT="$(free_port)"
    { [ -n "$KAFKA_SASL_SSL_PORT" ] && ! port_used "$KAFKA_SASL_SSL_PORT"; } || KAFKA_SASL_SSL_PORT="$(free_port)"
    { [ -n "$KAFKA_SSL_PORT" ] && ! port_used "$KAFKA_SSL_PORT"; } || KAFKA_SSL_PORT="$(free_port)"
    { [ -n "$CONTROLLER_PORT" ] && ! port_used "$CONTROLLER_PORT"; } || CONTROLLER_PORT="$(free_port)"
  fi
  if ! alive "$RDIR/redis.pid" redis-server; then
    { [ -n "$REDIS_PORT" ] && ! port_used "$REDIS_PORT"; } || REDIS_PORT="$(free_port)"
    { [ -n "$REDIS_TLS_PORT" ] && ! port_used "$REDIS_TLS_PORT"; } || REDIS_TLS_PORT="$(free_port)"
  fi
  PICKED=" $KAFKA_PORT $KAFKA_SASL_SSL_PORT $KAFKA_SSL_PORT $CONTROLLER_PORT $REDIS_PORT $REDIS_TLS_PORT "
  printf 'KAFKA_PORT=%s\nKAFKA_SASL_SSL_PORT=%s\nKAFKA_SSL_PORT=%s\nCONTROLLER_PORT=%s\nREDIS_PORT=%s\nREDIS_TLS_PORT=%s\n' \
    "$KAFKA_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_SSL_PORT" "$CONTROLLER_PORT" "$REDIS_PORT" "$REDIS_TLS_PORT" >"$PORTS"
}

# Ports saved by `up`; fails if there are none.
saved_ports() {
  [ -f "$PORTS" ] || die "no services state in $STATE (run: $0 up)"
  # shellcheck disable=SC1090
  . "$PORTS"
}

# --- Redis --------------------------------------------------------------------

ensure_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server
  fi
}

start_redis() {
  if alive "$RDIR/redis.pid" redis-server; then return 0; fi
  ensure_redis
  mkdir -p "$RDIR"
  log "starting redis on 127.0.0.1:$REDIS_PORT (TLS on $REDIS_TLS_PORT)"
  # Daemonised; no persistence (tests want a clean, fast cache). The TLS port
  # takes the test CA's server certificate; a client certificate is optional.
  redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 \
    --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS/broker.crt" --tls-key-file "$TLS/broker.key" \
    --tls-ca-cert-file "$TLS/ca.pem" --tls-auth-clients optional \
    --save '' --appendonly no --dir "$RDIR" \
    --pidfile "$RDIR/redis.pid" --logfile "$RDIR/redis.log" </dev/null >/dev/null 2>&1 9>&-
  local i
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
      log "redis is up"
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$RDIR/redis.log" >&2 2>/dev/null || true
  die "redis did not answer PING on port $REDIS_PORT within ${TIMEOUT}s (log above: $RDIR/redis.log)"
}

stop_redis() { stop_pid "$RDIR/redis.pid" redis-server 15; }

# --- Kafka --------------------------------------------------------------------

ensure_java() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
}

# Resolve the broker's jars (plus a logging binding) from Maven Central into the
# cache once; later runs use the cache without network.
ensure_kafka_jars() {
  [ -f "$KLIB/.complete" ] && return 0
  command -v mvn >/dev/null || apt_install maven
  local work logdeps
  mkdir -p "$CACHE"
  work="$(mktemp -d "$CACHE/kafka-$KAFKA_VERSION.tmp.XXXXXX")"
  case "$KAFKA_VERSION" in
    3.*) logdeps="
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>$SLF4J1_VERSION</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>$RELOAD4J_VERSION</version></dependency>" ;;
    *) logdeps="
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>" ;;
  esac
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.planflag</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>$logdeps
  </dependencies>
</project>
EOF
  log "resolving Kafka $KAFKA_VERSION jars with mvn into $KLIB"
  if ! (cd "$work" && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DoutputDirectory="$work/lib" -DincludeScope=runtime </dev/null >"$work/mvn.log" 2>&1 9>&-); then
    tail -n 40 "$work/mvn.log" >&2
    rm -rf "$work"
    die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  touch "$work/lib/.complete"
  rm -rf "$KLIB"
  mkdir -p "$(dirname "$KLIB")"
  mv "$work/lib" "$KLIB"
  rm -rf "$work"
}

# Broker config and logging config (rewritten on every start, from the ports).
# make_tls: a throwaway CA, a certificate for the broker (127.0.0.1) and one for
# a client, and the SASL user's password; made once per state dir, so the
# broker restarts with the same ones.
make_tls() {
  [ -f "$TLS/client.pem" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$TLS"
  local ext
  ext="$TLS/ext.cnf"
  (
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=planflag test CA" \
      -keyout ca.key -out ca.pem
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$ext"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout broker.key -out broker.csr
    openssl x509 -req -days 365 -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -extfile "$ext" -out broker.crt
    # Kafka's PEM key store: the (PKCS#8) key, then the certificate chain.
    cat broker.key broker.crt >broker.pem
    printf 'extendedKeyUsage=clientAuth\n' >"$ext"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=planflag" -keyout client.key -out client.csr
    openssl x509 -req -days 365 -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -extfile "$ext" -out client.pem
    printf planflag >sasl-user
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >sasl-password
    rm -f ./*.csr "$ext"
  ) >"$TLS/openssl.log" 2>&1 || die "making the test certificates failed (log: $TLS/openssl.log)"
  chmod 600 "$TLS"/*.key "$TLS/sasl-password"
}

write_kafka_config() {
  mkdir -p "$KDIR/data"
  local pw
  pw="$(cat "$TLS/sasl-password")"
  cat >"$KDIR/server.properties" <<EOF
# Generated by scripts/services.sh: single-node KRaft broker+controller for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
# The secured listeners: TLS with the test CA's certificate; SASL (PLAIN or
# SCRAM, user planflag; the SCRAM credentials are added when the storage is
# formatted) on one, a client certificate on the other.
ssl.keystore.type=PEM
ssl.keystore.location=$TLS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_planflag="$pw";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# An authorizer, so that clients refused by ACLs are tested against a real
# broker: everything is allowed where no ACL says otherwise, and the
# plaintext listener's principal (ANONYMOUS: the broker itself, the
# controller, the tests' admin) is a super user.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
super.users=User:ANONYMOUS
log.dirs=$KDIR/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# Small machine (2 cores): fewer threads.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
  # Everything goes to stdout, which start_kafka sends to kafka.log.
  write_kafka_log4j2 "$KDIR/log4j2.properties" WARN
  cat >"$KDIR/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
}

# JVM flags: small heap (2-core machine shared with the tests), logging config for
# log4j2 (Kafka 4.x) or log4j 1 (Kafka 3.x), the cached jars on the classpath.
KAFKA_JVM=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$KDIR/log4j2.properties"
  -Dlog4j.configuration="file:$KDIR/log4j.properties"
  -Dkafka.logs.dir="$KDIR"
  -cp "$KLIB/*")

# Format the storage once (first start); later starts keep the data dir.
format_kafka() {
  [ -f "$KDIR/data/meta.properties" ] && return 0
  local cid
  cid="$(kafka_cluster_id)"
  log "formatting Kafka storage (cluster id $cid)"
  local pw
  pw="$(cat "$TLS/sasl-password")"
  java "${KAFKA_JVM[@]}" kafka.tools.StorageTool format -t "$cid" -c "$KDIR/server.properties" \
    --add-scram "SCRAM-SHA-256=[name=planflag,password=$pw]" \
    --add-scram "SCRAM-SHA-512=[name=planflag,password=$pw]" \
    </dev/null >>"$KDIR/kafka.log" 2>&1 9>&- || { tail -n 30 "$KDIR/kafka.log" >&2; die "kafka storage format failed"; }
}

start_kafka() {
  if alive "$KDIR/kafka.pid" kafka.Kafka; then return 0; fi
  ensure_java
  ensure_kafka_jars
  write_kafka_config
  touch "$KDIR/kafka.log"
  format_kafka
  local from before pid i
  # Only log lines written after this start count as "started".
  from=$(($(stat -c %s "$KDIR/kafka.log") + 1))
  before="$(grep -c 'Kafka Server started' "$KDIR/kafka.log" || true)"
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller $CONTROLLER_PORT)"
  # setsid: own session, so the broker outlives the caller's process group.
  (cd "$KDIR" && exec setsid java "${KAFKA_JVM[@]}" kafka.Kafka "$KDIR/server.properties" \
    </dev/null >>"$KDIR/kafka.log" 2>&1 9>&-) &
  pid=$!
  echo "$pid" >"$KDIR/kafka.pid"
  # Ready = the broker logged "Kafka Server started" (it is unfenced and serving)
  # and it answers a real Kafka request on its port.
  for ((i = 0; i < TIMEOUT * 5; i++)); do
    pid_running "$pid" || break
    if [ "$(grep -c 'Kafka Server started' "$KDIR/kafka.log" || true)" -gt "$before" ] && kafka_api_answers "$KAFKA_PORT"; then
      log "kafka is up"
      return 0
    fi
    sleep 0.2
  done
  echo "----- tail of $KDIR/kafka.log -----" >&2
  tail -c +"$from" "$KDIR/kafka.log" | tail -n 40 >&2
  if pid_running "$pid"; then
    stop_kafka
    die "kafka did not start within ${TIMEOUT}s (log above: $KDIR/kafka.log)"
  fi
  rm -f "$KDIR/kafka.pid"
  die "kafka exited during startup (log above: $KDIR/kafka.log)"
}

# A clean KRaft shutdown takes a few seconds; allow 30 before SIGKILL.
stop_kafka() { stop_pid "$KDIR/kafka.pid" kafka.Kafka 30; }

# --- commands -----------------------------------------------------------------

print_env() {
  kafka_env
  redis_env
  echo "export SERVICES_TLS_DIR=$TLS"
}

redis_env() {
  echo "export REDIS_ADDR=127.0.0.1:$REDIS_PORT"
  echo "export REDIS_TLS_ADDR=127.0.0.1:$REDIS_TLS_PORT"
}

kafka_env() {
  echo "export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "export KAFKA_SASL_SSL_BROKERS=127.0.0.1:$KAFKA_SASL_SSL_PORT"
  echo "export KAFKA_SSL_BROKERS=127.0.0.1:$KAFKA_SSL_PORT"
}

cmd_up() {
  mkdir -p "$STATE"
  load_ports
  make_tls
  start_redis
  start_kafka
  print_env
}

cmd_down() {
  stop_kafka
  stop_redis
  # Remove only what this script creates (never the whole dir: it may be user-set).
  rm -rf "$KDIR" "$RDIR" "$PORTS" "$TLS"
  log "services are down"
}

# Exports of the services that run (a stopped one is reported on stderr);
# fails when neither runs.
cmd_env() {
  local n=0
  saved_ports
  if alive "$KDIR/kafka.pid" kafka.Kafka; then
    kafka_env; n=$((n + 1))
  else
    log "kafka is not running"
  fi
  if alive "$RDIR/redis.pid" redis-server; then
    redis_env; n=$((n + 1))
  else
    log "redis is not running"
  fi
  [ "$n" -gt 0 ] || die "no service is running (run: $0 up)"
  echo "export SERVICES_TLS_DIR=$TLS"
}

cmd_status() {
  KAFKA_PORT='' REDIS_PORT=''
  # shellcheck disable=SC1090
  [ -f "$PORTS" ] && . "$PORTS"
  if alive "$KDIR/kafka.pid" kafka.Kafka; then
    echo "kafka: running (pid $(cat "$KDIR/kafka.pid")) on 127.0.0.1:$KAFKA_PORT, version $KAFKA_VERSION"
  else
    echo "kafka: stopped"
  fi
  if alive "$RDIR/redis.pid" redis-server; then
    echo "redis: running (pid $(cat "$RDIR/redis.pid")) on 127.0.0.1:$REDIS_PORT"
  else
    echo "redis: stopped"
  fi
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    up | down | env | status | restart-kafka | stop-redis | start-redis) ;;
    *) echo "usage: $0 up|down|env|status|restart-kafka|stop-redis|start-redis" >&2; exit 2 ;;
  esac
  # One command at a time per state dir (tests in parallel may all call `up`).
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock 9
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    restart-kafka)
      saved_ports
      stop_kafka
      start_kafka ;;
    stop-redis)
      saved_ports
      stop_redis ;;
    start-redis)
      saved_ports
      start_redis ;;
  esac
}

main "$@"
