"""Routes of the registry API, under /api/v1/."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("repositories", views.RepositoryViewSet, basename="repository")
router.register("tags", views.TagViewSet, basename="tag")
router.register("tag-events", views.TagEventViewSet, basename="tag-event")

urlpatterns = router.urls
