"""Filters shared by the FilterSets of every app."""

from datetime import UTC, timedelta

import django_filters
from django import forms

# Real time zones lie within UTC-12:00 and UTC+14:00; PostgreSQL refuses offsets past ±15:59.
MIN_UTC_OFFSET, MAX_UTC_OFFSET = timedelta(hours=-12), timedelta(hours=14)


class UtcDateTimeField(forms.DateTimeField):
    """An ISO 8601 date-time, turned into UTC; an impossible time zone offset is a field error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.iso_field = django_filters.fields.IsoDateTimeField(*args, **kwargs)

    def to_python(self, value):
        moment = self.iso_field.to_python(value)
        if moment is None:
            return None
        offset = moment.utcoffset()
        if offset is not None and not MIN_UTC_OFFSET <= offset <= MAX_UTC_OFFSET:
            raise forms.ValidationError(
                "The time zone offset must lie between -12:00 and +14:00.", code="invalid"
            )
        return moment.astimezone(UTC) if offset is not None else moment


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` that refuses impossible offsets instead of failing in the database."""

    field_class = UtcDateTimeField
