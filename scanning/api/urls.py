"""Routes of the scanning API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("scan-reports", views.ScanReportViewSet, basename="scan-report")
router.register("components", views.ComponentViewSet, basename="component")
router.register("findings", views.FindingViewSet, basename="finding")
router.register("osv-snapshots", views.OsvSnapshotViewSet, basename="osv-snapshot")

urlpatterns = router.urls
