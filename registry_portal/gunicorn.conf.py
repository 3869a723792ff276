"""gunicorn settings for `make run` and the benchmark.

Threads in each worker keep slow blob uploads from blocking other requests; gunicorn sets
``wsgi.input_terminated`` so streamed (chunked, no Content-Length) PATCH bodies are read to
EOF, and serves local blob files with sendfile through ``wsgi.file_wrapper``.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = int(os.environ.get("WEB_TIMEOUT", "300"))
graceful_timeout = 30
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
# gunicorn >= 24 opens a control socket in ~/.gunicorn by default: several portals on one
# machine (tests, the benchmark, `make run`) would fight over it. Older versions ignore this.
control_socket_disable = True


def child_exit(server, worker):
    """prometheus_client's multiprocess mode: a dead worker's live gauges are dropped (its
    counters stay counted, in its file under PROMETHEUS_MULTIPROC_DIR)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
