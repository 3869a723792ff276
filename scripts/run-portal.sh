#!/usr/bin/env bash
# Start the web server (gunicorn) and a Celery worker (with its periodic-task scheduler)
# together; Ctrl-C or the end of either one stops both.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DATA_DIR=$("$BIN/python" -c 'from django.conf import settings; import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_portal.settings")
print(settings.DATA_DIR)')

# Metrics of every web and worker process are summed from files here (prometheus_client's
# multiprocess mode); emptied at each start, since the counters start again at zero.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$DATA_DIR/prometheus}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

"$BIN/celery" -A registry_portal worker --beat --loglevel INFO \
  --schedule "$DATA_DIR/celerybeat-schedule" --concurrency 2 &
worker=$!
"$BIN/gunicorn" -c registry_portal/gunicorn.conf.py registry_portal.wsgi &
web=$!
trap 'kill -TERM $worker $web 2>/dev/null; wait' INT TERM EXIT
echo "Portal on http://127.0.0.1:${PORT:-8000}/admin/ (worker pid $worker, web pid $web)"
wait -n $worker $web
