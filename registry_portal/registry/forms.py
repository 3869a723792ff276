"""Forms of the repository pages: settings and team access."""

from django import forms

from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.models import Team

GRANT_LEVELS = [(c.value, c.label) for c in AccessLevel if c != AccessLevel.NONE]


class RepositorySettingsForm(forms.Form):
    """What a repository admin may change about the repository itself."""

    visibility = forms.ChoiceField(
        label="Visibility",
        choices=[
            ("private", "Private: only teams with access may pull"),
            ("public", "Public: anyone, even without an account, may pull"),
        ],
        widget=forms.RadioSelect,
    )
    immutable_tags = forms.BooleanField(
        label="Immutable tags",
        required=False,
        help_text="Once a tag exists it can never be moved to another image; "
        "promotions onto an existing tag then fail.",
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class TeamChoiceField(forms.ModelChoiceField):
    """Teams of one organization, by name (their organization is implied)."""

    def label_from_instance(self, obj):
        return obj.name


class TeamAccessForm(forms.Form):
    """Give a team of the repository's organization a level on the repository."""

    team = TeamChoiceField(label="Team", queryset=Team.objects.none(), empty_label=None)
    level = forms.TypedChoiceField(
        label="Access level", choices=GRANT_LEVELS, coerce=int, initial=AccessLevel.READ_ONLY
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.filter(organization=organization)
