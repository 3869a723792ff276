"""Routes of the promotions API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("policies", views.PromotionPolicyViewSet, basename="policy")
router.register("promotion-records", views.PromotionRecordViewSet, basename="promotion-record")

urlpatterns = router.urls
