"""Load the demo: organizations dev and qa, their teams, a team lead, the website repos, and
the seed promotion policy (dev/website, tag ends with `stable` → qa/website, timestamp tag).

Idempotent: running it again changes nothing that exists.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from promotions import services as promotion_services
from registry_portal.accounts import services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.models import Organization, Team
from registry_portal.registry.models import Repository
from registry_portal.registry.services import repository_create

SEED_POLICY = "stable builds to QA"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented demo accounts for a laptop

USERS = {
    "lead": "Team lead: admin of dev/website and qa/website",
    "dev1": "Developer: read-write on dev/website",
    "qa1": "QA engineer: read-write on qa/website",
}


class Command(BaseCommand):
    help = "Create the demo organizations, teams, users and repositories (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        users = {name: self._user(name, about) for name, about in USERS.items()}
        for org_name, team_name, member in (("dev", "developers", "dev1"), ("qa", "qa", "qa1")):
            org = Organization.objects.filter(name=org_name).first() or (
                services.organization_create(name=org_name, display_name=org_name.upper())
            )
            repo = Repository.objects.filter(namespace=org, name="website").first() or (
                repository_create(
                    namespace=org,
                    name="website",
                    created_by=users["lead"],
                    description=f"The website, {org_name} stage.",
                )
            )
            team = self._team(org, team_name, users[member])
            services.access_grant(team=team, level=AccessLevel.READ_WRITE, repository=repo)
            leads = self._team(org, "leads", users["lead"])
            services.access_grant(team=leads, level=AccessLevel.ADMIN, repository=repo)
        self._seed_policy(users["lead"])
        self.stdout.write(f"Demo users (password '{DEMO_PASSWORD}'): {', '.join(sorted(USERS))}")

    def _seed_policy(self, lead) -> None:
        source = Repository.objects.get(namespace__name="dev", name="website")
        if source.promotion_policies.filter(name=SEED_POLICY).exists():
            return
        promotion_services.policy_create(
            actor=lead,
            source=source,
            target=Repository.objects.get(namespace__name="qa", name="website"),
            name=SEED_POLICY,
            description="Stable builds go to QA, tagged with the time of promotion.",
            rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
            tag_template="%Y%m%d-%H%M%S",
        )

    def _user(self, username: str, about: str):
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            user = users.objects.create_user(
                username=username, password=DEMO_PASSWORD, first_name=about, is_staff=True
            )
        return user

    def _team(self, org: Organization, name: str, member) -> Team:
        team = Team.objects.filter(organization=org, name=name).first() or services.team_create(
            organization=org, name=name
        )
        services.team_add_member(team=team, user=member)
        return team
