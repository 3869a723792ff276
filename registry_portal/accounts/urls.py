"""Routes of the account and organization pages."""

from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("orgs/<str:org>/", views.OrganizationView.as_view(), name="organization"),
    path("orgs/<str:org>/teams/<str:team>/", views.TeamView.as_view(), name="team"),
]
