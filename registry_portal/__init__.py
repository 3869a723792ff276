"""The registry portal: an OCI registry, its management portal and the promotion engine."""

from .celery import app as celery_app

__all__ = ("celery_app",)
