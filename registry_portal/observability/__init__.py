"""What operators watch: Prometheus metrics, health probes, request ids and JSON logs.

Project-level wiring, like ``registry_portal.urls``: it reads the apps' rows (promotion
records, scan reports, OSV snapshots) through ``apps.get_model`` at scrape time and imports
none of their modules, so no app depends on it.
"""
