#!/usr/bin/env bash
# `make demo`: a local Kafka, the rules service, the example cohort published, the deviations shown.
#   scripts/demo.sh        start (again) and show
#   scripts/demo.sh stop   stop the rules service and Kafka that the demo started
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
run=.cache/demo
pidfile=$run/rules.pid
bin=.venv/bin
examples=${TRIALGUARD_EXAMPLES:-$root/examples/three-participants.jsonl}
export TRIALGUARD_BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_PORT:-9092}

if [[ ${1:-} == stop ]]; then
  if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    while kill -0 "$(cat "$pidfile")" 2>/dev/null; do sleep 0.2; done
    echo "demo: rules service stopped"
  fi
  rm -f "$pidfile"
  scripts/kafka.sh down
  exit 0
fi

mkdir -p "$run"
scripts/kafka.sh up
if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "demo: rules service already running (pid $(cat "$pidfile"))"
else
  setsid "$bin/trialguard" rules serve >>"$run/rules.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "demo: rules service started (pid $!, log $run/rules.log)"
fi

echo "demo: publishing $examples"
"$bin/trialguard" publish "$examples"
echo
echo "Deviations and alerts raised (participant, rule, event time, term):"
"$bin/trialguard" deviations --format table --wait 120
cat <<TXT

Kafka:            $TRIALGUARD_BOOTSTRAP_SERVERS   (log: .cache/kafka/run/${KAFKA_PORT:-9092}/server.log)
Rules service:    pid $(cat "$pidfile")             (log: $run/rules.log, JSON lines)
Raw findings:     .venv/bin/trialguard deviations
Publish more:     .venv/bin/trialguard publish FILE.jsonl     (or kcat, see README)
Stop everything:  make demo-stop
TXT
