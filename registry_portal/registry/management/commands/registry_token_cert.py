"""Show the token service's certificate, for operators who make another registry trust it.

A stock distribution registry trusts our tokens when configured with::

    auth:
      token:
        realm: <PORTAL_URL>/auth/token
        service: <REGISTRY_TOKEN_SERVICE>
        issuer: <REGISTRY_TOKEN_ISSUER>
        rootcertbundle: <this certificate>

``--config`` prints exactly that block. The key and the certificate are generated on first
use, so this command also creates them on a fresh install.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse

from registry_portal.registry import tokens


class Command(BaseCommand):
    help = "Print the token signing certificate (PEM), its path, or a registry auth config."

    def add_arguments(self, parser) -> None:
        output = parser.add_mutually_exclusive_group()
        output.add_argument(
            "--path", action="store_true", help="Print only the certificate's file path."
        )
        output.add_argument(
            "--config",
            action="store_true",
            help="Print the auth section of a distribution registry's config.yml.",
        )

    def handle(self, *args, path: bool, config: bool, **options) -> None:
        key = tokens.signing_key()
        if path:
            self.stdout.write(str(key.certificate_path))
        elif config:
            realm = settings.PORTAL_URL + reverse("registry-token")
            self.stdout.write(
                "auth:\n"
                "  token:\n"
                f'    realm: "{realm}"\n'
                f'    service: "{tokens.token_service()}"\n'
                f'    issuer: "{tokens.token_issuer()}"\n'
                f'    rootcertbundle: "{key.certificate_path}"\n'
                f"# key id (kid) of our tokens: {key.kid}"
            )
        else:
            self.stdout.write(key.certificate_pem().decode(), ending="")
