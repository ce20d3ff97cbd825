#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1, for local runs and
# tests, without Docker.
#
#   scripts/kafka.sh up       fetch the jars (first time), format storage (first time), start, wait
#   scripts/kafka.sh down     stop the broker this script started (by its pid), wait for it to exit
#   scripts/kafka.sh status   say whether it runs
#   scripts/kafka.sh fetch    only fetch the jars
#
# Settings (environment):
#   KAFKA_PORT             client port                       (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port             (default KAFKA_PORT+1)
#   KAFKA_DIR              config, data, pid and log folder  (default .cache/kafka/run/$KAFKA_PORT)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness     (default 90)
#   KAFKA_HEAP_OPTS        JVM heap                          (default -Xms256m -Xmx768m)
#   KAFKA_EXTRA_PROPERTIES more server.properties lines, appended (tests lower group timeouts)
# Jars are fetched by Maven (kafka/pom.xml) into .cache/kafka/libs and the Maven repository
# .cache/m2; both are ignored by git and reused by later runs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
libs="$root/.cache/kafka/libs"
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
dir=${KAFKA_DIR:-$root/.cache/kafka/run/$port}
timeout=${KAFKA_START_TIMEOUT:-90}
pidfile="$dir/kafka.pid"
log="$dir/server.log"

say() { printf 'kafka: %s\n' "$*" >&2; }

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

fetch() {
  if compgen -G "$libs/kafka_2.13-*.jar" >/dev/null; then return; fi
  command -v mvn >/dev/null || { say "Maven (mvn) is needed to fetch the broker jars"; exit 1; }
  say "fetching broker jars with Maven into $libs (first run only)"
  mvn -q -B -Dstyle.color=never -f "$root/kafka/pom.xml" -Dmaven.repo.local="$root/.cache/m2" dependency:copy-dependencies
}

write_config() {
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
# A single node: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
${KAFKA_EXTRA_PROPERTIES:-}
PROPS
  cat >"$dir/log4j2.properties" <<PROPS
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
PROPS
}

format_storage() {
  # Formatting once is what makes a second start fast and keeps the topics; a folder that is
  # already formatted (meta.properties present) is reused as it is.
  if [[ -f $dir/data/meta.properties ]]; then return; fi
  local cluster_id
  cluster_id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  say "formatting KRaft storage in $dir/data (cluster $cluster_id)"
  java -cp "$libs/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >>"$log" 2>&1 \
    || { say "storage format failed; see $log"; exit 1; }
}

up() {
  if running; then say "already running (pid $(cat "$pidfile"), 127.0.0.1:$port)"; return; fi
  command -v java >/dev/null || { say "Java 17+ is needed"; exit 1; }
  fetch
  write_config
  format_storage
  : >"$log"
  # setsid: the broker gets its own session, so a Ctrl-C in the caller's terminal does not kill it.
  setsid java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  say "starting on 127.0.0.1:$port (pid $!, log $log)"
  local waited=0
  until grep -q "Kafka Server started" "$log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! running; then say "the broker exited during start; last lines of $log:"; tail -n 20 "$log" >&2; exit 1; fi
    if ((waited >= timeout * 2)); then say "not ready after ${timeout}s; see $log"; down; exit 1; fi
    sleep 0.5
    waited=$((waited + 1))
  done
  say "ready on 127.0.0.1:$port"
}

down() {
  if ! running; then say "not running"; rm -f "$pidfile"; return; fi
  local pid waited=0
  pid=$(cat "$pidfile")
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= 60)); then say "no exit after 30s, killing pid $pid"; kill -9 "$pid"; fi
    sleep 0.5
    waited=$((waited + 1))
  done
  rm -f "$pidfile"
  say "stopped (pid $pid)"
}

case "${1:-}" in
  up) up ;;
  fetch) fetch ;;
  down) down ;;
  status) if running; then echo "running (pid $(cat "$pidfile"), 127.0.0.1:$port)"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 up|down|status|fetch" >&2; exit 2 ;;
esac
