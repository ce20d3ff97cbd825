#!/usr/bin/env bash
# `make demo`: a local Kafka, the rules service (serving every installed study), the notifier (no
# subscriptions until you add one), the dashboard, and a simulated cohort of each study published live (years of event time in a few minutes) for the
# dashboard to show as it happens.
#   scripts/demo.sh        start (again; what already runs is left running) and show where to look
#   scripts/demo.sh stop   stop the simulators, the dashboard, the notifier, the rules service and Kafka it started,
#                          on the ports recorded when they started (TRIALGUARD_DEMO_DIR/state)
# Settings (environment):
#   KAFKA_PORT                    broker port on 127.0.0.1                   (default 9092)
#   KAFKA_CONTROLLER_PORT         the broker's KRaft controller port         (default KAFKA_PORT+1)
#   TRIALGUARD_HTTP_PORT          the rules service's /health and /metrics   (default 8081)
#   TRIALGUARD_DASHBOARD_PORT     dashboard port on 127.0.0.1                (default 8080)
#   TRIALGUARD_NOTIFIER_PORT      the notifier's /health, /metrics, /operations (default 8083)
#   TRIALGUARD_DEMO_PARTICIPANTS  participants of each simulated cohort      (default 300)
#   TRIALGUARD_DEMO_MINUTES       minutes the cohorts' event time takes      (default 5)
#   TRIALGUARD_DEMO_SEED          the cohorts' seed (default: a new one per run, so that a second run
#                                 adds participants instead of republishing the same events)
#   TRIALGUARD_DEMO_TIMEOUT       seconds to wait for the rules service, notifier and dashboard (default 120)
#   TRIALGUARD_DEMO_DIR           pids, ports, logs, credentials, dashboard data (default .cache/demo)
# A port already taken by something else, or a process that dies while the demo starts, stops it
# with an error naming the port and the setting to change (or the log to read).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
run=${TRIALGUARD_DEMO_DIR:-.cache/demo}
bin=.venv/bin
examples=${TRIALGUARD_EXAMPLES:-$root/examples/three-participants.jsonl}
state=$run/state
dashboard_data=$run/dashboard
credentials=$run/credentials
studies=(NCT06904729 NCT06946485)

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
fail() { echo "demo: $*" >&2; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The ports of a demo that runs are those it recorded when it started (whatever the settings say
# now), so that a second `make demo` or `make demo-stop` finds it.
recorded() { if [[ -f $state ]]; then sed -n "s/^$1=//p" "$state" | tail -n 1; fi; }
kafka_port=$(recorded KAFKA_PORT)
kafka_port=${kafka_port:-${KAFKA_PORT:-9092}}
controller_port=$(recorded KAFKA_CONTROLLER_PORT)
controller_port=${controller_port:-${KAFKA_CONTROLLER_PORT:-$((kafka_port + 1))}}
rules_port=$(recorded TRIALGUARD_HTTP_PORT)
rules_port=${rules_port:-${TRIALGUARD_HTTP_PORT:-8081}}
dashboard_port=$(recorded TRIALGUARD_DASHBOARD_PORT)
dashboard_port=${dashboard_port:-${TRIALGUARD_DASHBOARD_PORT:-8080}}
notifier_port=$(recorded TRIALGUARD_NOTIFIER_PORT)
notifier_port=${notifier_port:-${TRIALGUARD_NOTIFIER_PORT:-8083}}
notifier_data=$run/notifier
export KAFKA_PORT=$kafka_port KAFKA_CONTROLLER_PORT=$controller_port
export TRIALGUARD_BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port
unset TRIALGUARD_STUDY_ID # the rules service serves every installed study

# Refuse a port that something other than this demo listens on, naming the setting that moves it.
check_port() {
  local port=$1 setting=$2 owner=$3
  if ! alive "$run/$owner.pid" && listening "$port"; then
    fail "port $port is taken by another program; set $setting to a free port (e.g. $setting=$((port + 100)) make demo)"
  fi
}

# Wait until URL answers 200, failing loudly when NAME's process exits or TIMEOUT passes.
wait_healthy() {
  local name=$1 url=$2 deadline=$((SECONDS + ${TRIALGUARD_DEMO_TIMEOUT:-120}))
  echo "demo: waiting for the $name at $url (at most ${TRIALGUARD_DEMO_TIMEOUT:-120} s)"
  until "$bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" 2>/dev/null; do
    if ! alive "$run/$name.pid"; then
      echo "demo: the $name exited; last lines of $run/$name.log:" >&2
      tail -n 20 "$run/$name.log" >&2
      exit 1
    fi
    ((SECONDS < deadline)) || fail "the $name did not answer $url within ${TRIALGUARD_DEMO_TIMEOUT:-120} s; see $run/$name.log"
    sleep 0.5
  done
}

# Stop one process of the demo by its pidfile: SIGTERM (each stops cleanly on it), SIGKILL after 30 s.
stop() {
  local name=$1 pidfile=$run/$1.pid waited=0
  if alive "$pidfile"; then
    kill "$(cat "$pidfile")"
    while alive "$pidfile"; do
      if ((waited++ == 150)); then
        echo "demo: $name did not stop within 30 s; killing it"
        kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
      fi
      sleep 0.2
    done
    echo "demo: $name stopped"
  fi
  rm -f "$pidfile"
}

# Start one process of the demo in its own session, logging to $run/NAME.log, unless it runs.
start() {
  local name=$1 pidfile=$run/$1.pid
  shift
  if alive "$pidfile"; then
    echo "demo: $name already running (pid $(cat "$pidfile"))"
    return
  fi
  setsid "$@" >>"$run/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "demo: $name started (pid $!, log $run/$name.log)"
}

if [[ ${1:-} == stop ]]; then
  for study in "${studies[@]}"; do stop "simulator-$study"; done
  stop simulator # a demo started before there were two studies
  stop dashboard
  stop notifier
  stop rules
  scripts/kafka.sh down
  rm -f "$state"
  exit 0
fi

mkdir -p "$run"
if ! scripts/kafka.sh status >/dev/null 2>&1; then
  listening "$kafka_port" && fail "port $kafka_port is taken by another program; set KAFKA_PORT to a free port"
  listening "$controller_port" &&
    fail "port $controller_port (Kafka's controller) is taken by another program; set KAFKA_CONTROLLER_PORT to a free port"
fi
check_port "$rules_port" TRIALGUARD_HTTP_PORT rules
check_port "$dashboard_port" TRIALGUARD_DASHBOARD_PORT dashboard
check_port "$notifier_port" TRIALGUARD_NOTIFIER_PORT notifier
cat >"$state" <<STATE
KAFKA_PORT=$kafka_port
KAFKA_CONTROLLER_PORT=$controller_port
TRIALGUARD_HTTP_PORT=$rules_port
TRIALGUARD_DASHBOARD_PORT=$dashboard_port
TRIALGUARD_NOTIFIER_PORT=$notifier_port
STATE
scripts/kafka.sh up
# The key that signs the audit hash-chain checkpoints, made once (see README, "Audit").
[[ -f $run/audit.key ]] || "$bin/trialguard" audit keygen --out "$run/audit.key" >/dev/null
start rules "$bin/trialguard" rules serve --audit-key "$run/audit.key" --checkpoint-every 500 --http-port "$rules_port" \
  --instance-id demo-rules  # a static group member: a restart takes the partitions back without a rebalance
wait_healthy rules "http://127.0.0.1:$rules_port/health"

# The demo login, created once; its password is kept (mode 600) and shown on every run.
if [[ ! -f $credentials ]]; then
  (umask 077 && mkdir -p "$dashboard_data")
  password=$("$bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))')
  # Added as an operator adds anyone (a set-password link, not shown here), then given the
  # generated password by `users passwd`, which reads it from stdin; both go to the access log.
  if ! "$bin/trialguard" users add demo --role data-manager --data-dir "$dashboard_data" >/dev/null ||
    ! printf '%s\n' "$password" | "$bin/trialguard" users passwd demo --data-dir "$dashboard_data" >/dev/null; then
    echo "demo: could not create the demo user; if $dashboard_data has one from an earlier demo whose" >&2
    echo "      $credentials is gone, remove $dashboard_data and run make demo again" >&2
    exit 1
  fi
  # The dashboard serves every installed study; roles are per study: data-manager in each.
  for study in $("$bin/python" -c 'from protocol.registry import studies; print(*studies())'); do
    "$bin/trialguard" users role demo --role data-manager --study "$study" --data-dir "$dashboard_data" >/dev/null
  done
  (umask 077 && printf 'user: demo\npassword: %s\n' "$password" >"$credentials")
  echo "demo: created the dashboard user demo (role data-manager in every installed study)"
fi

url=http://127.0.0.1:$dashboard_port
# The notifier serves every installed study; subscriptions are the operator's (none by default),
# their owners the dashboard's users. Its deliveries and dead letters are on the operations page.
start notifier "$bin/trialguard" notifier serve --host 127.0.0.1 --port "$notifier_port" --data-dir "$notifier_data" \
  --users-file "$dashboard_data/users.sqlite3" --dashboard-url "$url"
wait_healthy notifier "http://127.0.0.1:$notifier_port/health"
start dashboard "$bin/trialguard" dashboard serve --host 127.0.0.1 --port "$dashboard_port" --data-dir "$dashboard_data" \
  --notifier-url "http://127.0.0.1:$notifier_port"

echo "demo: publishing $examples"
"$bin/trialguard" publish "$examples"

seed=${TRIALGUARD_DEMO_SEED:-$(($(date +%s) % 1000000))}
for study in "${studies[@]}"; do
  if ! alive "$run/simulator-$study.pid"; then
    echo "demo: simulated $study cohort: seed $seed, ${TRIALGUARD_DEMO_PARTICIPANTS:-300} participants," \
      "${TRIALGUARD_DEMO_MINUTES:-5} minutes (ground truth: $run/labels-$study-$seed.json)"
  fi
  start "simulator-$study" "$bin/trialguard" simulate --live --study "$study" \
    --participants "${TRIALGUARD_DEMO_PARTICIPANTS:-300}" --seed "$seed" --minutes "${TRIALGUARD_DEMO_MINUTES:-5}" \
    --labels "$run/labels-$study-$seed.json"
done

# The commands shown at the end reach this broker without flags only on the default port.
cli=.venv/bin/trialguard
[[ $kafka_port == 9092 ]] || cli="TRIALGUARD_BOOTSTRAP_SERVERS=$TRIALGUARD_BOOTSTRAP_SERVERS $cli"
wait_healthy dashboard "$url/health"
for name in rules notifier "${studies[@]/#/simulator-}"; do
  alive "$run/$name.pid" || [[ $name == simulator-* && $(tail -c 2000 "$run/$name.log") == *simulate.live.done* ]] ||
    { tail -n 20 "$run/$name.log" >&2; fail "the $name exited; see $run/$name.log"; }
done

cat <<TXT

Dashboard:        $url   (pid $(cat "$run/dashboard.pid"), log $run/dashboard.log)
  user:           demo
  password:       $(sed -n 's/^password: //p' "$credentials")   (kept in $credentials)
Simulators:       $(for s in "${studies[@]}"; do printf '%s pid %s  ' "$s" "$(cat "$run/simulator-$s.pid" 2>/dev/null || echo done)"; done)
                  (logs $run/simulator-STUDY.log: simulated date, events published)
Rules service:    pid $(cat "$run/rules.pid"), studies ${studies[*]}   (log $run/rules.log, JSON lines;
                  http://127.0.0.1:$rules_port/health and /metrics)
Notifier:         pid $(cat "$run/notifier.pid"), no subscriptions until you add one (log $run/notifier.log;
                  http://127.0.0.1:$notifier_port/operations, also on the dashboard's Operations page)
  subscribe:      $bin/trialguard notify subscribe --user demo --webhook http://127.0.0.1:9000/hook [--study NCT06946485] \\
                    --data-dir $notifier_data --users-file $dashboard_data/users.sqlite3
Kafka:            $TRIALGUARD_BOOTSTRAP_SERVERS   (log .cache/kafka/run/$kafka_port/server.log)
Findings:         $cli deviations --format table [--study NCT06946485]
Audit:            $cli export events --out events.jsonl --key $run/audit.key
                  $cli audit verify events.jsonl --public-key $run/audit.key.pub --bootstrap-servers $TRIALGUARD_BOOTSTRAP_SERVERS
                  $cli audit report --out report.html --public-key $run/audit.key.pub
Publish more:     $cli publish FILE.jsonl     (or kcat, see README)
Stop everything:  make demo-stop
TXT
