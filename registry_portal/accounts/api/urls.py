"""Routes of the accounts API, under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("teams", views.TeamViewSet, basename="team")
router.register("grants", views.GrantViewSet, basename="grant")
router.register("me/tokens", views.AccessTokenViewSet, basename="token")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
