from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry_portal.registry"
    label = "registry"
    verbose_name = "Registry"
