"""Routes of the operators' endpoints."""

from django.urls import path

from . import health, views

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("-/healthy", health.healthy, name="health-healthy"),
    path("-/ready", health.ready, name="health-ready"),
]
