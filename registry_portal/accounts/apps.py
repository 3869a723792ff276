from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "registry_portal.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"
