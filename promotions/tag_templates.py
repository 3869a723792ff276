"""Tag templates: the name a promoted image gets in the target repository.

A template is text with placeholders (``%n`` for the original tag, and
strftime-like ones for the promotion's time, in UTC); an empty template keeps
the source tag. Pure: the caller passes the time.

Names of days and months are English whatever the process locale, because a
tag must not change with the server's configuration: they are mapped here,
not taken from ``strftime``.

A template is refused (``validate``) when no rendering can be a valid tag
``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``: unknown placeholders, a lone ``%``,
literal text with characters a tag cannot hold (``%%`` renders ``%``, which is
one of them), a leading ``.`` or ``-``, or a shortest rendering over 128
characters. A template that is fine for ordinary values but can exceed 128
characters for long tags or month names gets a warning instead (``warnings``):
the promotion then fails for those tags, with a record saying why.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from registry_portal.grammar import MAX_TAG_LENGTH, is_tag_character, is_valid_tag

WEEKDAY_NAMES: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
MONTH_NAMES: tuple[str, ...] = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# code: what it renders, for help texts and error messages
PLACEHOLDERS: Mapping[str, str] = MappingProxyType(
    {
        "%n": "the original tag",
        "%A": "weekday, full name (Monday)",
        "%a": "weekday, short name (Mon)",
        "%w": "weekday as a number, 0 (Sunday) to 6",
        "%d": "day of the month, 01 to 31",
        "%B": "month, full name (January)",
        "%b": "month, short name (Jan)",
        "%m": "month as a number, 01 to 12",
        "%Y": "year, four digits",
        "%y": "year, two digits",
        "%H": "hour, 00 to 23",
        "%I": "hour, 01 to 12",
        "%p": "AM or PM",
        "%M": "minute, 00 to 59",
        "%S": "second, 00 to 59",
        "%f": "microseconds, 000000 to 999999",
        "%Z": "time zone name (UTC)",
        "%j": "day of the year, 001 to 366",
        "%W": "week of the year (weeks start on Monday), 00 to 53",
    }
)

_ORIGINAL_TAG = "%n"
_LITERAL_PERCENT = "%%"
_LONGEST_WEEKDAY = max(len(name) for name in WEEKDAY_NAMES)
_SHORTEST_WEEKDAY = min(len(name) for name in WEEKDAY_NAMES)
_LONGEST_MONTH = max(len(name) for name in MONTH_NAMES)
_SHORTEST_MONTH = min(len(name) for name in MONTH_NAMES)
# (shortest, longest) rendering of each placeholder; %Y is zero-padded to 4.
_RENDERED_LENGTHS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "%n": (1, MAX_TAG_LENGTH),
        "%A": (_SHORTEST_WEEKDAY, _LONGEST_WEEKDAY),
        "%a": (3, 3),
        "%w": (1, 1),
        "%B": (_SHORTEST_MONTH, _LONGEST_MONTH),
        "%b": (3, 3),
        "%Y": (4, 4),
        "%p": (2, 2),
        "%f": (6, 6),
        "%Z": (3, 3),
        "%j": (3, 3),
        **{code: (2, 2) for code in ("%d", "%m", "%y", "%H", "%I", "%M", "%S", "%W")},
    }
)


class InvalidTagTemplateError(ValueError):
    """A template that cannot render, or a rendering that is not a valid tag."""


def _render_placeholder(code: str, moment: datetime, tag: str) -> str:
    if code == _ORIGINAL_TAG:
        return tag
    weekday = moment.weekday()  # Monday is 0
    day_of_year = moment.timetuple().tm_yday
    hour_12 = moment.hour % 12 or 12
    values = {
        "%A": WEEKDAY_NAMES[weekday],
        "%a": WEEKDAY_NAMES[weekday][:3],
        "%w": str((weekday + 1) % 7),
        "%d": f"{moment.day:02d}",
        "%B": MONTH_NAMES[moment.month - 1],
        "%b": MONTH_NAMES[moment.month - 1][:3],
        "%m": f"{moment.month:02d}",
        "%Y": f"{moment.year:04d}",
        "%y": f"{moment.year % 100:02d}",
        "%H": f"{moment.hour:02d}",
        "%I": f"{hour_12:02d}",
        "%p": "AM" if moment.hour < 12 else "PM",
        "%M": f"{moment.minute:02d}",
        "%S": f"{moment.second:02d}",
        "%f": f"{moment.microsecond:06d}",
        "%Z": "UTC",
        "%j": f"{day_of_year:03d}",
        "%W": f"{(day_of_year - 1 + 7 - weekday) // 7:02d}",
    }
    return values[code]


@dataclass(frozen=True)
class _Segment:
    text: str
    is_placeholder: bool


@dataclass(frozen=True)
class TagTemplate:
    """A tag template, e.g. ``%n-%Y%m%d`` or ``qa-%Y-%m-%dT%H%M%S``."""

    text: str

    def _segments(self) -> tuple[list[_Segment], list[str]]:
        """The template split into literal text and placeholders, and its syntax errors."""
        segments: list[_Segment] = []
        errors: list[str] = []
        literal: list[str] = []
        index = 0
        while index < len(self.text):
            character = self.text[index]
            if character != "%":
                literal.append(character)
                index += 1
                continue
            code = self.text[index : index + 2]
            index += 2
            if code == _LITERAL_PERCENT:
                literal.append("%")
            elif code in PLACEHOLDERS:
                if literal:
                    segments.append(_Segment("".join(literal), is_placeholder=False))
                    literal = []
                segments.append(_Segment(code, is_placeholder=True))
            elif code == "%":
                errors.append(
                    "the template ends with a lone '%'; a '%' starts a placeholder "
                    f"({', '.join(PLACEHOLDERS)}) or '%%'"
                )
            else:
                errors.append(
                    f"{code} is not a placeholder; use one of {', '.join(PLACEHOLDERS)}, "
                    "or '%%' for '%'"
                )
        if literal:
            segments.append(_Segment("".join(literal), is_placeholder=False))
        return segments, errors

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The known placeholders the template uses, in order of appearance."""
        segments, _errors = self._segments()
        return tuple(segment.text for segment in segments if segment.is_placeholder)

    @property
    def keeps_source_tag(self) -> bool:
        return self.text == ""

    def validate(self) -> list[str]:
        """Why the template is refused: empty when some rendering can be a valid tag."""
        if self.keeps_source_tag:
            return []
        segments, errors = self._segments()
        literal_text = "".join(segment.text for segment in segments if not segment.is_placeholder)
        forbidden = sorted({char for char in literal_text if not is_tag_character(char)})
        if forbidden:
            shown = ", ".join(repr(char) for char in forbidden)
            errors.append(
                f"a tag cannot contain {shown}; use letters, digits, '_', '.' and '-' "
                "around the placeholders"
            )
        if segments and not segments[0].is_placeholder and segments[0].text[0] in ".-":
            errors.append(f"a tag cannot start with {segments[0].text[0]!r}")
        shortest, _longest = self._rendered_length_range(segments)
        if shortest > MAX_TAG_LENGTH:
            errors.append(
                f"the template renders at least {shortest} characters; "
                f"a tag has at most {MAX_TAG_LENGTH}"
            )
        return errors

    def warnings(self) -> list[str]:
        """Valid templates that still fail to render a valid tag for some tags or times."""
        if self.validate():
            return []
        segments, _errors = self._segments()
        _shortest, longest = self._rendered_length_range(segments)
        if longest <= MAX_TAG_LENGTH:
            return []
        return [
            f"the template can render up to {longest} characters (for long original tags or "
            f"month names); promoting such a tag fails, as a tag has at most {MAX_TAG_LENGTH}"
        ]

    def render(self, *, now: datetime, tag: str) -> str:
        """The target tag for source ``tag`` promoted at ``now`` (aware; used in UTC).

        Raises ``InvalidTagTemplateError`` when the template is refused by
        ``validate`` or when this rendering is not a valid tag (too long).
        """
        errors = self.validate()
        if errors:
            raise InvalidTagTemplateError("; ".join(errors))
        rendered = self.preview(now=now, tag=tag)
        if not is_valid_tag(rendered):
            raise InvalidTagTemplateError(
                f"the template renders {rendered[:40]!r}…, which is not a valid tag "
                f"({len(rendered)} characters; at most {MAX_TAG_LENGTH})"
                if len(rendered) > MAX_TAG_LENGTH
                else f"the template renders {rendered!r}, which is not a valid tag"
            )
        return rendered

    def preview(self, *, now: datetime, tag: str) -> str:
        """What the template renders now, even if invalid: unknown placeholders stay as typed."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be an aware datetime")
        if self.keeps_source_tag:
            return tag
        moment = now.astimezone(UTC)
        parts: list[str] = []
        index = 0
        while index < len(self.text):
            code = self.text[index : index + 2]
            if code in PLACEHOLDERS:
                parts.append(_render_placeholder(code, moment, tag))
                index += 2
            elif code == _LITERAL_PERCENT:
                parts.append("%")
                index += 2
            else:
                parts.append(self.text[index])
                index += 1
        return "".join(parts)

    @staticmethod
    def _rendered_length_range(segments: list[_Segment]) -> tuple[int, int]:
        shortest = longest = 0
        for segment in segments:
            if segment.is_placeholder:
                low, high = _RENDERED_LENGTHS[segment.text]
            else:
                low = high = len(segment.text)
            shortest += low
            longest += high
        return shortest, longest


# The finest time a placeholder tells apart, finest first: two promotions within it render
# the same tag from a template that does not name the source tag.
_RESOLUTION = (
    ("%f", "microsecond"),
    ("%S", "second"),
    ("%M", "minute"),
    ("%H", "hour"),
    ("%I", "hour"),
    ("%d", "day"),
    ("%j", "day"),
    ("%a", "day"),
    ("%A", "day"),
    ("%w", "day"),
)


def repeat_warning(template: TagTemplate) -> str:
    """Why a template can render the same tag for two promotions, or '' when it cannot: one
    without %n renders the same tag for every promotion within its finest time unit, which
    is what a Save & Apply over many tags, or two pushes in the same second, do."""
    if template.keeps_source_tag or template.validate():
        return ""
    used = template.placeholders
    if _ORIGINAL_TAG in used:
        return ""
    unit = next((name for code, name in _RESOLUTION if code in used), "")
    when = f"in the same {unit}" if unit else "ever"
    return (
        f"the template does not contain %n: promotions {when} (a Save & Apply over many tags, "
        "or pushes close together) render the same tag; the later ones get a unique tag, "
        "<tag>-<first 8 hex digits of the digest>"
    )
