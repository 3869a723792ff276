"""The Celery application, configured from Django's settings (CELERY_* names)."""

import os

from celery import Celery

from registry_portal.observability.logs import connect_worker_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_portal.settings")

app = Celery("registry_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_worker_logging()
