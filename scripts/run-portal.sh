#!/usr/bin/env bash
# `make run`: the web server (gunicorn), a Celery worker and the Celery beat scheduler, each in
# a process group of its own (pids in $PORTAL_DATA_DIR/run/).
# - A worker or a scheduler that dies is started again (after 1 s, doubling up to 30 s while
#   it keeps dying at once). The web server goes on serving meanwhile.
# - The end of the web server ends the portal.
# - Ctrl-C or TERM stops everything, every time: TERM to each one, then KILL to what is left
#   of its process group after STOP_GRACE seconds (a worker finishing a long scan is cut short; the
#   outbox dispatches its job again on the next start).
# The worker serves the default queue and the scan queue.
set -uo pipefail
BIN=${BIN:-.venv/bin}
STOP_GRACE=${STOP_GRACE:-10}
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-2}
DATA_DIR=$("$BIN/python" -c 'from django.conf import settings; import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_portal.settings")
print(settings.DATA_DIR)') || exit 1
RUN_DIR="$DATA_DIR/run"
mkdir -p "$RUN_DIR"

# Metrics of every web and worker process are summed from files here (prometheus_client's
# multiprocess mode); emptied at each start, since the counters start again at zero.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$DATA_DIR/prometheus}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

say() { echo "run-portal: $*" >&2; }

# TERM to a group's leader (celery and gunicorn stop their own children), then wait until the
# whole group is gone, at most STOP_GRACE seconds, and KILL what is left.
stop_group() {
  local group=$1 tick
  kill -TERM "$group" 2>/dev/null
  for ((tick = 0; tick < STOP_GRACE * 10; tick++)); do
    kill -0 -- "-$group" 2>/dev/null || return 0
    sleep 0.1
  done
  say "process group $group still there after ${STOP_GRACE}s: killing it"
  kill -KILL -- "-$group" 2>/dev/null
  return 0
}

# supervise NAME COMMAND...: run COMMAND in its own session and process group, and again
# whenever it ends, until this (background) shell gets TERM.
supervise() {
  local name=$1 child=0 pause=0 delay=1 started status
  shift
  trap 'trap "" TERM INT; ((pause)) && kill "$pause" 2>/dev/null; ((child)) && stop_group "$child"
        rm -f "$RUN_DIR/$name.pid"; exit 0' TERM INT
  while true; do
    started=$SECONDS
    setsid "$@" &
    child=$!
    echo "$child" >"$RUN_DIR/$name.pid"
    wait "$child"
    status=$?
    kill -KILL -- "-$child" 2>/dev/null # its pool children, if it died before them
    child=0
    if ((SECONDS - started > 60)); then delay=1; fi
    say "the $name exited (status $status); starting it again in ${delay}s"
    sleep "$delay" &
    pause=$!
    wait "$pause"
    pause=0
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}

supervise worker "$BIN/celery" -A registry_portal worker -Q celery,scans --loglevel INFO \
  --concurrency "$WORKER_CONCURRENCY" &
worker_supervisor=$!
supervise beat "$BIN/celery" -A registry_portal beat --loglevel INFO \
  --schedule "$DATA_DIR/celerybeat-schedule" &
beat_supervisor=$!
setsid "$BIN/gunicorn" -c registry_portal/gunicorn.conf.py registry_portal.wsgi &
web=$!
echo "$web" >"$RUN_DIR/web.pid"

stopped=0
stop_all() {
  trap '' INT TERM # a second Ctrl-C does not cut the stop short
  ((stopped)) && return 0
  stopped=1
  say "stopping (at most ${STOP_GRACE}s, then KILL)"
  kill -TERM "$worker_supervisor" "$beat_supervisor" 2>/dev/null
  stop_group "$web"
  wait "$worker_supervisor" "$beat_supervisor" 2>/dev/null
  rm -f "$RUN_DIR/web.pid"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT
echo "Portal on http://127.0.0.1:${PORT:-8000}/admin/ (web pid $web; worker and beat pids in $RUN_DIR)"
wait "$web"
status=$?
say "the web server exited (status $status)"
stop_all
exit "$status"
