#!/usr/bin/env bash
# `make demo`: a local Kafka, the rules service, the dashboard, and a simulated cohort published
# live (its years of event time in a few minutes) for the dashboard to show as it happens.
#   scripts/demo.sh        start (again; what already runs is left running) and show where to look
#   scripts/demo.sh stop   stop the simulator, the dashboard, the rules service and Kafka it started
# Settings (environment):
#   KAFKA_PORT                    broker port                               (default 9092)
#   TRIALGUARD_DASHBOARD_PORT     dashboard port on 127.0.0.1                (default 8080)
#   TRIALGUARD_DEMO_PARTICIPANTS  participants of the simulated cohort       (default 300)
#   TRIALGUARD_DEMO_MINUTES       minutes the cohort's event time takes      (default 5)
#   TRIALGUARD_DEMO_SEED          the cohort's seed (default: a new one per run, so that a second run
#                                 adds participants instead of republishing the same events)
#   TRIALGUARD_DEMO_TIMEOUT       seconds to wait for the dashboard          (default 120)
#   TRIALGUARD_DEMO_DIR           pids, logs, credentials, dashboard data    (default .cache/demo)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
run=${TRIALGUARD_DEMO_DIR:-.cache/demo}
bin=.venv/bin
examples=${TRIALGUARD_EXAMPLES:-$root/examples/three-participants.jsonl}
dashboard_port=${TRIALGUARD_DASHBOARD_PORT:-8080}
dashboard_data=$run/dashboard
credentials=$run/credentials
export TRIALGUARD_BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_PORT:-9092}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

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
  stop simulator
  stop dashboard
  stop rules
  scripts/kafka.sh down
  exit 0
fi

mkdir -p "$run"
scripts/kafka.sh up
# The key that signs the audit hash-chain checkpoints, made once (see README, "Audit").
[[ -f $run/audit.key ]] || "$bin/trialguard" audit keygen --out "$run/audit.key" >/dev/null
start rules "$bin/trialguard" rules serve --audit-key "$run/audit.key" --checkpoint-every 500

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

start dashboard "$bin/trialguard" dashboard serve --host 127.0.0.1 --port "$dashboard_port" --data-dir "$dashboard_data"

echo "demo: publishing $examples"
"$bin/trialguard" publish "$examples"

seed=${TRIALGUARD_DEMO_SEED:-$(($(date +%s) % 1000000))}
if ! alive "$run/simulator.pid"; then
  echo "demo: simulated cohort: seed $seed, ${TRIALGUARD_DEMO_PARTICIPANTS:-300} participants," \
    "${TRIALGUARD_DEMO_MINUTES:-5} minutes (ground truth: $run/labels-$seed.json)"
fi
start simulator "$bin/trialguard" simulate --live --participants "${TRIALGUARD_DEMO_PARTICIPANTS:-300}" \
  --seed "$seed" --minutes "${TRIALGUARD_DEMO_MINUTES:-5}" --labels "$run/labels-$seed.json"

url=http://127.0.0.1:$dashboard_port
# The commands shown at the end reach this broker without flags only on the default port.
cli=.venv/bin/trialguard
[[ ${KAFKA_PORT:-9092} == 9092 ]] || cli="TRIALGUARD_BOOTSTRAP_SERVERS=$TRIALGUARD_BOOTSTRAP_SERVERS $cli"
timeout=${TRIALGUARD_DEMO_TIMEOUT:-120}
echo "demo: waiting for the dashboard at $url/health (at most ${timeout} s)"
deadline=$((SECONDS + timeout))
until "$bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url/health" 2>/dev/null; do
  if ! alive "$run/dashboard.pid"; then
    echo "demo: the dashboard exited; see $run/dashboard.log:" >&2
    tail -n 20 "$run/dashboard.log" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "demo: the dashboard did not answer $url/health within ${timeout} s; see $run/dashboard.log" >&2
    exit 1
  fi
  sleep 0.5
done

cat <<TXT

Dashboard:        $url   (pid $(cat "$run/dashboard.pid"), log $run/dashboard.log)
  user:           demo
  password:       $(sed -n 's/^password: //p' "$credentials")   (kept in $credentials)
Simulator:        pid $(cat "$run/simulator.pid")   (log $run/simulator.log: simulated date, events published)
Rules service:    pid $(cat "$run/rules.pid")   (log $run/rules.log, JSON lines)
Kafka:            $TRIALGUARD_BOOTSTRAP_SERVERS   (log .cache/kafka/run/${KAFKA_PORT:-9092}/server.log)
Findings:         $cli deviations --format table
Audit:            $cli export events --out events.jsonl --key $run/audit.key
                  $cli audit verify events.jsonl --public-key $run/audit.key.pub --bootstrap-servers $TRIALGUARD_BOOTSTRAP_SERVERS
                  $cli audit report --out report.html --public-key $run/audit.key.pub
Publish more:     $cli publish FILE.jsonl     (or kcat, see README)
Stop everything:  make demo-stop
TXT
