"""Tag templates: rendering every placeholder, validation, warnings and properties."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promotions.tag_templates import (
    MONTH_NAMES,
    PLACEHOLDERS,
    WEEKDAY_NAMES,
    InvalidTagTemplateError,
    TagTemplate,
)
from registry_portal.grammar import TAG_PATTERN, is_valid_tag

# 2024-12-31 21:05:06.000007 UTC, given in UTC+2: a Tuesday, the leap year's 366th day.
NOW = datetime(2024, 12, 31, 23, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))

PLACEHOLDER_CASES = [
    ("%n", "1.0-stable"),
    ("%A", "Tuesday"),
    ("%a", "Tue"),
    ("%w", "2"),
    ("%d", "31"),
    ("%B", "December"),
    ("%b", "Dec"),
    ("%m", "12"),
    ("%Y", "2024"),
    ("%y", "24"),
    ("%H", "21"),
    ("%I", "09"),
    ("%p", "PM"),
    ("%M", "05"),
    ("%S", "06"),
    ("%f", "000007"),
    ("%Z", "UTC"),
    ("%j", "366"),
    ("%W", "53"),
]


@pytest.mark.parametrize(("code", "expected"), PLACEHOLDER_CASES)
def test_each_placeholder_renders_in_utc(code, expected):
    template = TagTemplate(f"x{code}")

    assert template.render(now=NOW, tag="1.0-stable") == f"x{expected}"


def test_the_cases_cover_every_placeholder():
    assert [code for code, _ in PLACEHOLDER_CASES] == list(PLACEHOLDERS)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 1, 1, 0, 0, tzinfo=UTC), "Monday-Mon-1-January-Jan-12AM-001-01"),
        (datetime(2023, 1, 1, 12, 30, tzinfo=UTC), "Sunday-Sun-0-January-Jan-12PM-001-00"),
        (datetime(2024, 2, 29, 11, 59, tzinfo=UTC), "Thursday-Thu-4-February-Feb-11AM-060-09"),
        (datetime(2024, 9, 7, 13, 0, tzinfo=UTC), "Saturday-Sat-6-September-Sep-01PM-251-36"),
        (datetime(5, 5, 5, 23, 0, tzinfo=UTC), "Thursday-Thu-4-May-May-11PM-125-18"),
    ],
)
def test_names_numbers_and_twelve_hour_clock(moment, expected):
    template = TagTemplate("%A-%a-%w-%B-%b-%I%p-%j-%W")

    assert template.render(now=moment, tag="t") == expected


def test_years_are_zero_padded():
    assert TagTemplate("%Y.%y").render(now=datetime(5, 1, 1, tzinfo=UTC), tag="t") == "0005.05"


def test_the_documented_examples():
    tag = "1.0-stable"
    moment = datetime(2024, 6, 15, 8, 30, 0, tzinfo=UTC)

    assert TagTemplate("%n-%Y%m%d").render(now=moment, tag=tag) == "1.0-stable-20240615"
    assert TagTemplate("qa-%Y-%m-%dT%H%M%S").render(now=moment, tag=tag) == ("qa-2024-06-15T083000")
    assert TagTemplate("%n_%b%d").render(now=moment, tag=tag) == "1.0-stable_Jun15"


def test_an_empty_template_keeps_the_source_tag():
    template = TagTemplate("")

    assert template.keeps_source_tag
    assert template.validate() == []
    assert template.warnings() == []
    assert template.render(now=NOW, tag="v1") == "v1"
    assert template.placeholders == ()


def test_placeholders_in_order_of_appearance():
    assert TagTemplate("%n-%Y%m%d-%n").placeholders == ("%n", "%Y", "%m", "%d", "%n")
    assert TagTemplate("100%%n").placeholders == ()
    assert TagTemplate("a%qb%Y").placeholders == ("%Y",)


def test_a_doubled_percent_is_a_literal_percent_which_no_tag_may_hold():
    template = TagTemplate("v%%n")

    assert template.preview(now=NOW, tag="t") == "v%n"
    assert template.validate() == [
        "a tag cannot contain '%'; use letters, digits, '_', '.' and '-' around the placeholders"
    ]


# --- validation --------------------------------------------------------------------


def test_unknown_placeholders_are_refused_with_the_known_ones():
    errors = TagTemplate("v%q-%n").validate()

    assert errors == [
        "%q is not a placeholder; use one of %n, %A, %a, %w, %d, %B, %b, %m, %Y, %y, %H, "
        "%I, %p, %M, %S, %f, %Z, %j, %W, or '%%' for '%'"
    ]


@pytest.mark.parametrize("text", ["%e", "%-d", "%c", "%x", "%s", "%G", "%N", "v%e"])
def test_strftime_codes_we_do_not_offer_are_refused(text):
    errors = TagTemplate(text).validate()

    assert len(errors) == 1
    assert "is not a placeholder" in errors[0]


def test_a_dangling_percent_is_refused():
    assert TagTemplate("v1-%").validate() == [
        "the template ends with a lone '%'; a '%' starts a placeholder (%n, %A, %a, %w, %d, "
        "%B, %b, %m, %Y, %y, %H, %I, %p, %M, %S, %f, %Z, %j, %W) or '%%'"
    ]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("%n stable", "' '"),
        ("qa/%n", "'/'"),
        ("%H:%M", "':'"),
        ("%n+1", "'+'"),
        ("é%n", "'é'"),
        ("a b:c", "' ', ':'"),
    ],
)
def test_characters_no_tag_may_hold_are_refused(text, shown):
    assert TagTemplate(text).validate() == [
        f"a tag cannot contain {shown}; use letters, digits, '_', '.' and '-' around the "
        "placeholders"
    ]


@pytest.mark.parametrize("text", [".%n", "-%Y", "..", "-"])
def test_a_leading_dot_or_dash_is_refused(text):
    assert TagTemplate(text).validate() == [f"a tag cannot start with '{text[0]}'"]


@pytest.mark.parametrize("text", ["_%n", "%n.", "%n-", "%Y.%m", "v.1", "%n--%n"])
def test_dots_dashes_and_underscores_elsewhere_are_fine(text):
    assert TagTemplate(text).validate() == []


def test_a_template_that_always_renders_too_long_is_refused():
    text = "x" * 120 + "%Y%m%d"  # always 128 + 0 characters: fine
    assert TagTemplate(text).validate() == []

    too_long = "x" * 121 + "%Y%m%d"  # always 129 characters
    assert TagTemplate(too_long).validate() == [
        "the template renders at least 129 characters; a tag has at most 128"
    ]


def test_several_problems_are_all_reported():
    errors = TagTemplate("-%q %").validate()

    assert len(errors) == 4


# --- warnings -----------------------------------------------------------------------


def test_a_template_that_can_exceed_the_length_gets_a_warning():
    template = TagTemplate("%n-%Y%m%d")

    assert template.validate() == []
    assert template.warnings() == [
        "the template can render up to 137 characters (for long original tags or month "
        "names); promoting such a tag fails, as a tag has at most 128"
    ]


@pytest.mark.parametrize("text", ["%n", "qa-%Y%m%d-%H%M%S", "%A-%B-%d"])
def test_templates_that_always_fit_have_no_warning(text):
    assert TagTemplate(text).warnings() == []


def test_month_names_count_at_their_longest():
    fits = "x" * 119 + "%B"  # September: 128
    too_long = "x" * 120 + "%B"

    assert TagTemplate(fits).warnings() == []
    assert TagTemplate(too_long).validate() == []
    assert "up to 129 characters" in TagTemplate(too_long).warnings()[0]
    assert TagTemplate(too_long).render(now=datetime(2024, 5, 1, tzinfo=UTC), tag="t")


def test_an_invalid_template_has_errors_not_warnings():
    assert TagTemplate("%n %n").warnings() == []


# --- render and preview -------------------------------------------------------------------


def test_render_refuses_an_invalid_template():
    with pytest.raises(InvalidTagTemplateError, match="%q is not a placeholder"):
        TagTemplate("%q").render(now=NOW, tag="t")


def test_render_refuses_a_rendering_too_long_for_a_tag():
    template = TagTemplate("prefix-%n")

    assert template.render(now=NOW, tag="a" * 121) == "prefix-" + "a" * 121
    with pytest.raises(InvalidTagTemplateError, match="129 characters; at most 128"):
        template.render(now=NOW, tag="a" * 122)


def test_preview_shows_what_an_invalid_template_renders():
    template = TagTemplate("%n %q:%Y%")

    assert template.preview(now=NOW, tag="v1") == "v1 %q:2024%"


@pytest.mark.parametrize("method", ["render", "preview"])
def test_the_time_must_be_aware(method):
    with pytest.raises(ValueError, match="aware"):
        getattr(TagTemplate("%Y"), method)(now=datetime(2024, 1, 1), tag="t")


def test_names_do_not_depend_on_the_locale():
    # Mapped by hand, not by strftime: the lists are the English names.
    assert WEEKDAY_NAMES[0] == "Monday" and WEEKDAY_NAMES[6] == "Sunday"
    assert MONTH_NAMES[0] == "January" and MONTH_NAMES[8] == "September"
    assert len(WEEKDAY_NAMES) == 7 and len(MONTH_NAMES) == 12


# --- properties ------------------------------------------------------------------------------

timezones = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=timezones
)
valid_tags = st.from_regex(TAG_PATTERN, fullmatch=True)
template_texts = st.lists(
    st.sampled_from([*PLACEHOLDERS, "%%", "%q", "%", "-", ".", "_", "v", "1", "rc", " ", "/"]),
    max_size=8,
).map("".join)

NUMERIC_CODES = ["%w", "%d", "%m", "%y", "%H", "%I", "%M", "%S", "%f", "%j", "%W", "%Y"]


@given(moments)
def test_numeric_placeholders_agree_with_strftime_in_utc(moment):
    utc = moment.astimezone(UTC)
    template = TagTemplate("-".join(NUMERIC_CODES))

    rendered = template.render(now=moment, tag="t").split("-")

    expected = [utc.strftime(code) for code in NUMERIC_CODES[:-1]] + [f"{utc.year:04d}"]
    assert rendered == expected


@given(moments)
def test_names_agree_with_the_calendar(moment):
    utc = moment.astimezone(UTC)

    rendered = TagTemplate("%A.%a.%B.%b.%p.%Z").render(now=moment, tag="t")

    weekday, short_weekday, month, short_month, half, zone = rendered.split(".")
    assert weekday == WEEKDAY_NAMES[utc.weekday()]
    assert short_weekday == weekday[:3]
    assert month == MONTH_NAMES[utc.month - 1]
    assert short_month == month[:3]
    assert half == ("AM" if utc.hour < 12 else "PM")
    assert zone == "UTC"


@given(template_texts, moments, valid_tags)
def test_templates_without_errors_or_warnings_always_render_a_valid_tag(text, moment, tag):
    template = TagTemplate(text)

    if template.validate():
        with pytest.raises(InvalidTagTemplateError):
            template.render(now=moment, tag=tag)
    elif not template.warnings():
        assert is_valid_tag(template.render(now=moment, tag=tag))


@given(template_texts, moments, valid_tags)
def test_valid_templates_render_a_valid_tag_or_say_why_not(text, moment, tag):
    template = TagTemplate(text)
    if template.validate():
        return

    try:
        rendered = template.render(now=moment, tag=tag)
    except InvalidTagTemplateError as error:
        assert template.warnings()
        assert "at most 128" in str(error)
    else:
        assert is_valid_tag(rendered)


@given(template_texts, moments, valid_tags)
def test_preview_never_raises_and_matches_render(text, moment, tag):
    template = TagTemplate(text)

    preview = template.preview(now=moment, tag=tag)

    if not template.validate() and is_valid_tag(preview):
        assert template.render(now=moment, tag=tag) == preview
