"""The one name grammar (registry_portal.grammar): property tests against oracles written
without regular expressions, the finding that started it (a tag ending in a newline), and
every surface that must ask it."""

import json
import string

import pytest
from django.core.exceptions import ValidationError
from django.urls import resolve, reverse
from hypothesis import given
from hypothesis import strategies as st

from registry_portal import grammar
from registry_portal.errors import ValidationFailed
from registry_portal.registry import services
from registry_portal.registry.models import Manifest, Repository, Tag
from registry_portal.registry.validators import (
    validate_digest,
    validate_media_type,
    validate_repository_path,
    validate_tag,
)
from tests import factories

from .helpers import V2, errors, image_manifest

# --- oracles: the spec's words, as plain code ---------------------------------------------

LOWER_ALNUM = set(string.ascii_lowercase + string.digits)
TAG_FIRST = set(string.ascii_letters + string.digits + "_")
TAG_REST = TAG_FIRST | {".", "-"}
HEX = set("0123456789abcdef")
MEDIA_TYPE_REST = set(string.ascii_letters + string.digits + "!#$&^_.+-")


def oracle_component(text: str) -> bool:
    """Alphanumeric runs joined by one '.', one or two '_', or any number of '-'."""
    runs, separators, current, separator = [], [], "", ""
    for character in text:
        if character in LOWER_ALNUM:
            if separator:
                separators.append(separator)
                separator = ""
                runs.append(current)
                current = ""
            current += character
        elif character in "._-":
            if not current and not runs:
                return False
            separator += character
        else:
            return False
    if separator or not current:
        return False
    runs.append(current)
    return all(s in (".", "_", "__") or set(s) == {"-"} for s in separators)


def oracle_repository_name(text: str) -> bool:
    return len(text) <= 255 and all(oracle_component(part) for part in text.split("/"))


def oracle_tag(text: str) -> bool:
    return 0 < len(text) <= 128 and text[0] in TAG_FIRST and all(c in TAG_REST for c in text[1:])


def oracle_digest(text: str) -> bool:
    algorithm, colon, hex_digits = text.partition(":")
    lengths = {"sha256": 64, "sha512": 128}
    return bool(colon) and len(hex_digits) == lengths.get(algorithm, -1) and set(hex_digits) <= HEX


def oracle_media_type(text: str) -> bool:
    def name(part: str) -> bool:
        return (
            0 < len(part) <= 127
            and part[0] in LOWER_ALNUM | set(string.ascii_uppercase)
            and set(part) <= MEDIA_TYPE_REST
        )

    kind, slash, subtype = text.partition("/")
    return bool(slash) and name(kind) and name(subtype)


# Text built mostly from the grammar's own characters (plus newlines, spaces and a few
# others), so that both valid and invalid values come up often.
name_text = st.text(alphabet="ab09._-/\n A", max_size=24)
tag_text = st.text(alphabet="aZ09._-\n :+", max_size=24) | st.just("a" * 128)
digest_text = st.builds(
    "{}:{}{}".format,
    st.sampled_from(["sha256", "sha512", "md5", "SHA256"]),
    st.text(alphabet="0af9AF", min_size=60, max_size=130),
    st.sampled_from(["", "\n", " ", "g"]),
)
media_text = st.text(alphabet="av0/.+-;=\n ", max_size=20)


@given(name_text)
def test_repository_names_are_the_spec_grammar(text):
    assert grammar.is_valid_repository_name(text) is oracle_repository_name(text)


@given(tag_text)
def test_tags_are_the_spec_grammar(text):
    assert grammar.is_valid_tag(text) is oracle_tag(text)


@given(digest_text | st.text(max_size=80))
def test_digests_are_the_spec_grammar(text):
    assert grammar.is_valid_digest(text) is oracle_digest(text)


@given(media_text)
def test_media_types_are_rfc_6838_names(text):
    assert grammar.is_valid_media_type(text) is oracle_media_type(text)


@given(st.from_regex(grammar.TAG_PATTERN, fullmatch=True), st.sampled_from(["\n", "\r", " "]))
def test_no_value_with_a_trailing_newline_or_space_is_valid(tag, tail):
    """The finding: ``$`` with ``re.match`` accepted a final newline."""
    assert grammar.is_valid_tag(tag)
    assert not grammar.is_valid_tag(tag + tail)
    assert not grammar.is_valid_reference(tag + tail)
    assert not grammar.is_valid_repository_name(f"dev/{tag.lower()}{tail}")
    assert not grammar.is_valid_digest("sha256:" + "a" * 64 + tail)


@given(
    st.from_regex(grammar.REPOSITORY_NAME_PATTERN, fullmatch=True).filter(lambda n: len(n) < 200)
)
def test_every_valid_name_and_tag_round_trips_through_the_page_urls(name):
    tag = "v1.0_rc-" + name.replace("/", ".")[:100]
    kwargs = {"namespace": "dev", "name": name, "tag": tag}
    url = reverse("repos:tag-vulnerabilities", kwargs=kwargs)
    assert resolve(url).kwargs == kwargs


def test_names_outside_the_grammar_never_reverse_to_a_page():
    from django.urls import NoReverseMatch

    for kwargs in (
        {"namespace": "dev", "name": "website", "tag": "stable\n"},
        {"namespace": "dev", "name": "website\n", "tag": "stable"},
        {"namespace": "Dev", "name": "website", "tag": "stable"},
    ):
        with pytest.raises(NoReverseMatch):
            reverse("repos:tag-vulnerabilities", kwargs=kwargs)


def test_references_are_tags_or_digests():
    assert grammar.is_valid_reference("latest")
    assert grammar.is_valid_reference("sha256:" + "0" * 64)
    assert grammar.is_valid_reference("sha256-" + "0" * 64)  # the referrers fallback tag
    assert not grammar.is_valid_reference("sha256:" + "0" * 63)
    assert grammar.is_digest_reference("md5:abc") and not grammar.is_digest_reference("v1")


@pytest.mark.parametrize(
    ("validator", "good", "bad"),
    [
        (validate_tag, "1.0-stable", "stable\n"),
        (validate_repository_path, "web/site", "web/site\n"),
        (validate_digest, "sha256:" + "a" * 64, "sha256:" + "a" * 64 + "\n"),
        (validate_media_type, "application/vnd.oci.image.manifest.v1+json", "text/plain\n"),
    ],
)
def test_model_field_validators_ask_the_grammar(validator, good, bad):
    validator(good)
    with pytest.raises(ValidationError):
        validator(bad)


def test_model_fields_carry_the_validators():
    def field_validators(model, name):
        return model._meta.get_field(name).validators

    assert validate_tag in field_validators(Tag, "name")
    assert validate_repository_path in field_validators(Repository, "name")
    assert validate_digest in field_validators(Manifest, "digest")
    assert validate_media_type in field_validators(Manifest, "artifact_type")


# --- the finding, through /v2/ ------------------------------------------------------------

CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"layer bytes"


@pytest.fixture
def blobs(reg, repo):
    for blob in (CONFIG, LAYER):
        reg.push_blob("acme/app", blob)


@V2
def test_a_tag_ending_in_a_newline_is_refused_and_never_listed(reg, blobs):
    content = image_manifest(CONFIG, [LAYER])

    response = reg.push_manifest("acme/app", "stable%0A", content)

    assert response.status_code == 400
    assert errors(response) == ["TAG_INVALID"]
    assert errors(reg.get("/v2/acme/app/manifests/stable%0A")) == ["TAG_INVALID"]
    assert not Tag.objects.exists()
    assert reg.push_manifest("acme/app", "stable", content).status_code == 201
    assert json.loads(reg.get("/v2/acme/app/tags/list").content)["tags"] == ["stable"]


@V2
@pytest.mark.parametrize("name", ["acme/app%0A", "acme%0A/app", "acme/app%0D", "acme/ap%20p"])
def test_a_name_with_a_newline_or_space_is_name_invalid(reg, repo, name):
    response = reg.get(f"/v2/{name}/tags/list")

    assert response.status_code == 400
    assert errors(response) == ["NAME_INVALID"]


@V2
def test_a_digest_ending_in_a_newline_is_digest_invalid(reg, blobs):
    digest = "sha256:" + "a" * 64
    assert errors(reg.get(f"/v2/acme/app/blobs/{digest}%0A")) == ["DIGEST_INVALID"]
    assert errors(reg.get(f"/v2/acme/app/manifests/{digest}%0A")) == ["DIGEST_INVALID"]


@V2
@pytest.mark.parametrize("media_type", ["text/plain\n", "no-slash", "a/b; charset=utf-8", ""])
def test_descriptor_media_types_and_artifact_types_follow_the_grammar(reg, blobs, media_type):
    body = json.loads(image_manifest(CONFIG, [LAYER]))
    body["layers"][0]["mediaType"] = media_type
    assert errors(reg.push_manifest("acme/app", "v1", json.dumps(body).encode())) == [
        "MANIFEST_INVALID"
    ]
    body = json.loads(image_manifest(CONFIG, [LAYER]))
    body["artifactType"] = media_type or "text/"
    assert errors(reg.push_manifest("acme/app", "v1", json.dumps(body).encode())) == [
        "MANIFEST_INVALID"
    ]


# --- the services are the lowest writer ---------------------------------------------------


def test_services_refuse_names_outside_the_grammar(db):
    org = factories.make_org("acme")
    repository = factories.make_repo(org, "app")
    manifest = factories.make_manifest()

    with pytest.raises(ValidationFailed) as refused:
        services.tag_set(repository=repository, name="stable\n", manifest=manifest)
    assert refused.value.field == "tag"
    with pytest.raises(ValidationFailed) as refused:
        services.repository_create(namespace=org, name="app\n")
    assert refused.value.field == "name"
    assert not Tag.objects.exists()
