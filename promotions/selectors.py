"""Reads of promotion data that are more than one filter."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from registry_portal.registry.models import Repository

from .models import PromotionRecord


def records_visible_to(user) -> QuerySet[PromotionRecord]:
    """Promotion records whose source or target repository the user may see."""
    visible = Repository.objects.visible_to(user)
    return PromotionRecord.objects.filter(
        Q(Exists(visible.filter(pk=OuterRef("source_repository_id"))))
        | Q(Exists(visible.filter(pk=OuterRef("target_repository_id"))))
    )
