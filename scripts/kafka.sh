#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1, for local runs and
# tests, without Docker.
#
#   scripts/kafka.sh up         fetch the jars (first time), format storage (first time), start, wait
#   scripts/kafka.sh secure-up  the same as KAFKA_SECURE=1 ... up: a secured broker (below)
#   scripts/kafka.sh down       stop the broker this script started (by its pid), wait for it to exit
#   scripts/kafka.sh status     say whether it runs
#   scripts/kafka.sh fetch      only fetch the jars
#
# Settings (environment):
#   KAFKA_PORT             client port                       (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port             (default KAFKA_PORT+1)
#   KAFKA_DIR              config, data, pid and log folder  (default .cache/kafka/run/$KAFKA_PORT)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness     (default 90)
#   KAFKA_HEAP_OPTS        JVM heap                          (default -Xms256m -Xmx768m)
#   KAFKA_EXTRA_PROPERTIES more server.properties lines, appended (tests lower group timeouts)
#   KAFKA_SECURE=1         a secured broker: SASL/SCRAM-SHA-512 on the client port, a SCRAM user
#                          per component, ACLs (StandardAuthorizer, deny when no ACL matches)
#   TRIALGUARD_TOPIC_NAMESPACE, TRIALGUARD_STUDY_ID
#                          the study whose topics the ACLs name (default trialguard, NCT06904729)
#
# The secured broker keeps its secrets in KAFKA_DIR (mode 0600, folder 0700): credentials (every
# user=password), secrets/<user>.password (one file per user, for --kafka-password-file), and
# admin.properties (the super user's client config, for kafka-acls and kafka-configs). The ACLs
# are in acls_for below and in README.md (Secured deployment). A folder formatted secured stays
# secured and one formatted open stays open: remove KAFKA_DIR to change.
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
  # kafka-tools brings kafka-acls (AclCommand), which the secured broker needs.
  if compgen -G "$libs/kafka_2.13-*.jar" >/dev/null && compgen -G "$libs/kafka-tools-[0-9]*.jar" >/dev/null; then
    return
  fi
  command -v mvn >/dev/null || { say "Maven (mvn) is needed to fetch the broker jars"; exit 1; }
  say "fetching broker jars with Maven into $libs (first run only)"
  mvn -q -B -Dstyle.color=never -f "$root/kafka/pom.xml" -Dmaven.repo.local="$root/.cache/m2" dependency:copy-dependencies
}

write_config() {
  mkdir -p "$dir/data"
  if secure; then
    listener_config_secure >"$dir/server.properties"
  else
    listener_config >"$dir/server.properties"
  fi
  cat >>"$dir/server.properties" <<PROPS
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

listener_config() {
  cat <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
PROPS
}

# --- The secured broker ------------------------------------------------------------------------
# Clients: SASL_PLAINTEXT with SCRAM-SHA-512 (add TLS in front for anything beyond 127.0.0.1:
# SASL_SSL, see README). The broker talks to itself on that listener as the SCRAM user `broker`.
# The controller listener uses SASL/PLAIN with one static user, `controller`: SCRAM credentials
# live in the metadata log, which the controller quorum must be reachable to read. Nothing is
# left unauthenticated, and `broker`, `controller` and `admin` are the only super users.

SECURE_USERS=(admin broker rules dashboard gateway operator)
CONTROLLER_USER=controller

secure() { [[ ${KAFKA_SECURE:-0} == 1 ]]; }

new_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

password_of() { sed -n "s/^$1=//p" "$dir/credentials"; }

write_credentials() {
  # Once per folder: the SCRAM credentials are written into the metadata at format time.
  if [[ -f $dir/credentials ]]; then return; fi
  local user
  mkdir -p "$dir/secrets"
  chmod 700 "$dir" "$dir/secrets"
  : >"$dir/credentials"
  chmod 600 "$dir/credentials"
  for user in "${SECURE_USERS[@]}" "$CONTROLLER_USER"; do
    printf '%s=%s\n' "$user" "$(new_password)" >>"$dir/credentials"
  done
  for user in "${SECURE_USERS[@]}"; do
    (umask 077 && password_of "$user" >"$dir/secrets/$user.password")
  done
  (umask 077 && cat >"$dir/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password_of admin)";
PROPS
  )
}

listener_config_secure() {
  local controller_password
  controller_password=$(password_of "$CONTROLLER_USER")
  cat <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=CLIENT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=CLIENT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$(password_of broker)";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$CONTROLLER_USER" password="$controller_password" user_$CONTROLLER_USER="$controller_password";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:broker;User:$CONTROLLER_USER
PROPS
}

scram_args() {
  local user
  for user in "${SECURE_USERS[@]}"; do
    printf '%s\n' --add-scram "SCRAM-SHA-512=[name=$user,password=$(password_of "$user")]"
  done
}

acl_calls=()
acl_pids=()

acl() {
  # One kafka-acls call, in the background: every principal and operation given, on every
  # resource given. The calls are independent; a JVM start is most of each, so they run together.
  local n=${#acl_calls[@]}
  acl_calls+=("$*")
  java ${KAFKA_TOOL_OPTS:--Xshare:auto -XX:TieredStopAtLevel=1} -cp "$libs/*" \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" org.apache.kafka.tools.AclCommand \
    --bootstrap-server "127.0.0.1:$port" --command-config "$dir/admin.properties" --add --force "$@" \
    >"$dir/acls.$n.log" 2>&1 &
  acl_pids+=($!)
}

wait_for_acls() {
  local i failed=0
  for i in "${!acl_pids[@]}"; do
    if ! wait "${acl_pids[$i]}"; then say "kafka-acls ${acl_calls[$i]} failed"; failed=1; fi
    cat "$dir/acls.$i.log" >>"$dir/acls.log" && rm -f "$dir/acls.$i.log"
  done
  if ((failed)); then say "see $dir/acls.log"; down; exit 1; fi
}

apply_acls() {
  # What each component may do on one study's topics (README.md, Secured deployment, has the
  # table). P is the study's prefix; a shadow run's topics and group are under P.shadow.
  local ns=${TRIALGUARD_TOPIC_NAMESPACE:-trialguard} study=${TRIALGUARD_STUDY_ID:-NCT06904729}
  local p="$ns.$study." marker="$dir/acls.applied"
  if [[ -f $marker && $(cat "$marker") == "$p" ]]; then return; fi
  say "granting the ACLs of $p* (log $dir/acls.log)"
  local prefixed=(--resource-pattern-type prefixed)
  acl_pids=()
  # Everyone of TrialGuard may see the study's topics exist (metadata, partitions).
  acl "${prefixed[@]}" --allow-principal User:rules --allow-principal User:dashboard \
    --allow-principal User:gateway --allow-principal User:operator --operation Describe --topic "$p"
  # rules: reads the input and its own state and checkpoints, writes its outputs in transactions.
  acl --allow-principal User:rules --operation Read --topic "${p}participant-events" \
    --topic "${p}participant-state" --topic "${p}audit-checkpoints" --group "${p}rules"
  acl --allow-principal User:rules --operation Write --topic "${p}deviations" --topic "${p}participant-state" \
    --topic "${p}dead-letter" --topic "${p}audit-checkpoints"
  acl "${prefixed[@]}" --allow-principal User:rules --operation Write --operation Describe \
    --transactional-id "${p}rules." --transactional-id "${p}shadow."
  acl "${prefixed[@]}" --allow-principal User:rules --operation Read --topic "${p}shadow." --group "${p}shadow."
  acl "${prefixed[@]}" --allow-principal User:rules --operation Write --topic "${p}shadow."
  # rules and operators create the study's topics (ensure_topics); no one else does.
  acl "${prefixed[@]}" --allow-principal User:rules --allow-principal User:operator --operation Create --topic "$p"
  # dashboard: reads what it shows, writes only reviews and the access log (an admin adding a user
  # on /admin/users, a user setting their password or logging out: each an AccessChanged event);
  # sees the rules group's lag, never joins it.
  acl --allow-principal User:dashboard --operation Read --topic "${p}deviations" --topic "${p}finding-reviews" \
    --topic "${p}participant-events" --topic "${p}dead-letter" --topic "${p}access-log"
  acl --allow-principal User:dashboard --operation Write --topic "${p}finding-reviews" --topic "${p}access-log"
  # ... a bulk review's reviews in one transaction (services/dashboard/batch_publish.py).
  acl "${prefixed[@]}" --allow-principal User:dashboard --operation Write --operation Describe \
    --transactional-id "${p}dashboard."
  acl --allow-principal User:dashboard --allow-principal User:operator --operation Describe --group "${p}rules"
  # gateway: reads participant-events (its registry) and writes them, in its own transactions.
  acl --allow-principal User:gateway --operation Read --operation Write --topic "${p}participant-events"
  acl "${prefixed[@]}" --allow-principal User:gateway --operation Write --operation Describe \
    --transactional-id "${p}gateway."
  # operator (the CLI: publish, deviations, audit, simulate --live, user management): reads
  # everything of the study, writes events and the access log.
  acl "${prefixed[@]}" --allow-principal User:operator --operation Read --topic "$p"
  acl --allow-principal User:operator --operation Write --topic "${p}participant-events" --topic "${p}access-log"
  wait_for_acls
  printf '%s' "$p" >"$marker"
}

format_storage() {
  # Formatting once is what makes a second start fast and keeps the topics; a folder that is
  # already formatted (meta.properties present) is reused as it is.
  if [[ -f $dir/data/meta.properties ]]; then return; fi
  local cluster_id
  cluster_id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  say "formatting KRaft storage in $dir/data (cluster $cluster_id)"
  local scram=()
  if secure; then mapfile -t scram < <(scram_args); fi
  # The SCRAM users are created in the bootstrap metadata (KRaft's --add-scram): the broker's own
  # inter-broker user must exist before the broker can start.
  java -cp "$libs/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" "${scram[@]}" >>"$log" 2>&1 \
    || { say "storage format failed; see $log"; exit 1; }
  if secure; then touch "$dir/secured"; fi
}

check_mode() {
  # A folder keeps the mode it was formatted in: its metadata has (or lacks) the SCRAM users.
  if [[ ! -f $dir/data/meta.properties ]]; then return; fi
  if secure && [[ ! -f $dir/secured ]]; then
    say "$dir was formatted without security; remove it (or use another KAFKA_DIR) for a secured broker"; exit 1
  fi
  if ! secure && [[ -f $dir/secured ]]; then
    say "$dir holds a secured broker: start it with KAFKA_SECURE=1 (or secure-up)"; exit 1
  fi
}

up() {
  if running; then say "already running (pid $(cat "$pidfile"), 127.0.0.1:$port)"; return; fi
  command -v java >/dev/null || { say "Java 17+ is needed"; exit 1; }
  fetch
  check_mode
  if secure; then umask 077 && write_credentials; fi
  write_config
  if secure; then chmod 600 "$dir/server.properties"; fi
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
  if secure; then apply_acls; fi
  say "ready on 127.0.0.1:$port$(secure && echo " (SASL_PLAINTEXT, SCRAM-SHA-512; secrets in $dir)")"
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
  secure-up) KAFKA_SECURE=1 up ;;
  fetch) fetch ;;
  down) down ;;
  status) if running; then echo "running (pid $(cat "$pidfile"), 127.0.0.1:$port)"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 up|secure-up|down|status|fetch" >&2; exit 2 ;;
esac
