"""Forms of the account and organization pages: sign-in, teams, members and grants."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm

from registry_portal.registry.models import Repository
from registry_portal.registry.selectors import repository_get_by_full_name

from .choices import AccessLevel
from .validators import validate_namespace_name

GRANT_LEVELS = [(c.value, c.label) for c in AccessLevel if c != AccessLevel.NONE]


class LoginForm(AuthenticationForm):
    """Django's sign-in form with autocomplete hints for password managers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username", autofocus=True)
        self.fields["password"].widget.attrs.update(autocomplete="current-password")


class TeamCreateForm(forms.Form):
    name = forms.CharField(
        label="Team name",
        max_length=64,
        validators=[validate_namespace_name],
        help_text="Lowercase letters, digits, '.', '_' and '-'.",
    )
    description = forms.CharField(label="Description", required=False, max_length=2000)


class TeamMemberForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"There is no active user called “{username}”.")
        self.cleaned_data["user"] = user
        return username


class TeamGrantForm(forms.Form):
    """A team's level on one repository of its organization, or on all of them."""

    repository = forms.CharField(
        label="Repository",
        required=False,
        max_length=255,
        help_text="A repository name in this organization, e.g. “website”; "
        "leave empty for every repository of the organization.",
    )
    level = forms.TypedChoiceField(label="Access level", choices=GRANT_LEVELS, coerce=int)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_repository(self) -> Repository | None:
        name = self.cleaned_data["repository"].strip().removeprefix(f"{self.organization.name}/")
        if not name:
            return None
        repository = repository_get_by_full_name(full_name=f"{self.organization.name}/{name}")
        if repository is None:
            raise forms.ValidationError(
                f"There is no repository “{name}” in {self.organization.name}."
            )
        return repository
