"""Views of the promotions API: declarations. Policies and records are restricted to what
the caller may see; every write and action is a ``promotions.services`` call, which checks
the permission rules of the reference (admin on source and target to create, change, apply
or promote; admin on either to delete)."""

from urllib.parse import urlencode

from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from promotions import services
from promotions.filtersets import PromotionPolicyFilterSet, PromotionRecordFilterSet
from promotions.models import PromotionPolicy, PromotionRecord
from registry_portal.accounts.choices import Action
from registry_portal.api.pagination import CursorPagination
from registry_portal.api.permissions import ReadOrAuthenticated
from registry_portal.errors import PermissionDenied, ValidationFailed
from registry_portal.registry.selectors import tag_get

from . import serializers

SAVED = {200: serializers.PolicySavedSerializer}
# Actions that answer a whole list: no filters, no pages.
PLAIN_LIST = {"filter_backends": [], "pagination_class": None}


def _saved(policy: PromotionPolicy) -> dict:
    """A saved policy, with the loop it closes (if any) and its warnings."""
    policy.loop = (
        services.policy_cycle(source=policy.source, target=policy.target)
        if policy.enabled and policy.target is not None
        else []
    )
    policy.warnings = services.policy_target_warnings(policies=[policy]).get(policy.pk, [])
    return serializers.PolicySavedSerializer(policy).data


@extend_schema_view(
    create=extend_schema(
        summary="Create a policy (admin on source and target)",
        request=serializers.PolicyCreateSerializer,
        responses={201: serializers.PolicySavedSerializer},
    ),
    update=extend_schema(
        summary="Replace a policy (admin on source and target)",
        request=serializers.PolicyUpdateSerializer,
        responses=SAVED,
    ),
    partial_update=extend_schema(
        summary="Change a policy (admin on source and target)",
        request=serializers.PolicyUpdateSerializer,
        responses=SAVED,
    ),
    destroy=extend_schema(summary="Delete a policy (admin on source or target)"),
)
class PromotionPolicyViewSet(viewsets.ModelViewSet):
    """Promotion policies whose source or target the caller may see."""

    serializer_class = serializers.PolicySerializer
    permission_classes = [ReadOrAuthenticated]
    filterset_class = PromotionPolicyFilterSet
    ordering_fields = ("name", "created_at", "updated_at")
    ordering = ("source__namespace__name", "source__name", "name")

    def get_queryset(self):
        return (
            PromotionPolicy.objects.restrict(self.request.user, Action.PULL)
            .select_related("source__namespace", "target__namespace", "created_by", "updated_by")
            .prefetch_related("rules")
        )

    def create(self, request, *args, **kwargs):
        serializer = serializers.PolicyCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        policy = services.policy_create(actor=request.user, **serializer.validated_data)
        return Response(_saved(policy), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        serializer = serializers.PolicyUpdateSerializer(
            data=request.data,
            partial=kwargs.get("partial", False),
            context=self.get_serializer_context(),
        )
        serializer.is_valid(raise_exception=True)
        policy = services.policy_update(
            actor=request.user, policy=self.get_object(), **serializer.validated_data
        )
        return Response(_saved(policy))

    def perform_destroy(self, policy):
        services.policy_delete(actor=self.request.user, policy=policy)

    @extend_schema(summary="Enable a policy", request=None, responses=SAVED)
    @action(detail=True, methods=["post"], filter_backends=[])
    def enable(self, request, pk=None):
        policy = services.policy_update(actor=request.user, policy=self.get_object(), enabled=True)
        return Response(_saved(policy))

    @extend_schema(summary="Disable a policy", request=None, responses=SAVED)
    @action(detail=True, methods=["post"], filter_backends=[])
    def disable(self, request, pk=None):
        policy = services.policy_update(actor=request.user, policy=self.get_object(), enabled=False)
        return Response(_saved(policy))

    @extend_schema(
        operation_id="policies_dry_run",
        summary="Dry run of a saved policy: which tags of its source it would promote now",
        request=None,
        responses=serializers.DryRunRowSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="dry-run",
        url_name="dry-run",
        **PLAIN_LIST,
    )
    def dry_run(self, request, pk=None):
        policy = self.get_object()
        rows = services.policy_dry_run(
            actor=request.user,
            source=policy.source,
            rules=services.policy_rule_specs(policy),
            tag_template=policy.tag_template,
            target=policy.target,
            pass_on_missing_data=policy.pass_on_missing_data,
            on_move=policy.on_move,
        )
        return Response(serializers.DryRunRowSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="policies_dry_run_unsaved",
        summary="Dry run of an unsaved policy (writes nothing)",
        request=serializers.DryRunSerializer,
        responses=serializers.DryRunRowSerializer(many=True),
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="dry-run",
        url_name="dry-run-unsaved",
        **PLAIN_LIST,
    )
    def dry_run_unsaved(self, request):
        serializer = serializers.DryRunSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        rows = services.policy_dry_run(actor=request.user, **serializer.validated_data)
        return Response(serializers.DryRunRowSerializer(rows, many=True).data)

    @extend_schema(
        summary="Queue the apply of a policy, as it is now, to the tags its source has (admin "
        "on source and target); the same revision applied twice promotes each tag once",
        request=None,
        responses={202: serializers.ApplyHandleSerializer},
    )
    @action(detail=True, methods=["post"], **PLAIN_LIST)
    def apply(self, request, pk=None):
        handle = services.policy_apply_queue(actor=request.user, policy=self.get_object())
        records = request.build_absolute_uri(
            reverse("promotion-record-list") + "?" + urlencode(handle.records_query)
        )
        return Response(
            {"policy_id": handle.policy_id, "revision": handle.revision, "records": records},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": records},
        )

    @extend_schema(
        summary="Promote one tag of the source now, whatever the rules (admin on source and "
        "target)",
        request=serializers.PromoteSerializer,
        responses={201: serializers.PromotionRecordSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def promote(self, request, pk=None):
        policy = self.get_object()
        # The right first, then the tag: whoever may not promote learns nothing about which
        # tags exist (the same 403 for a tag that exists and one that does not).
        if not PromotionPolicy.objects.restrict(request.user, Action.ADMIN).filter(pk=policy.pk):
            raise PermissionDenied(
                "Promoting through a policy needs admin rights on its source and its target."
            )
        serializer = serializers.PromoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag = tag_get(repository=policy.source, name=serializer.validated_data["tag"])
        if tag is None:
            raise ValidationFailed(
                f"No tag '{serializer.validated_data['tag']}' in {policy.source.full_name}.",
                field="tag",
            )
        record = services.promotion_manual(actor=request.user, policy=policy, tag=tag)
        return Response(
            serializers.PromotionRecordSerializer(record).data, status=status.HTTP_201_CREATED
        )


class PromotionRecordViewSet(viewsets.ReadOnlyModelViewSet):
    """Every promotion attempt whose source or target the caller may see, newest first."""

    serializer_class = serializers.PromotionRecordSerializer
    filterset_class = PromotionRecordFilterSet
    pagination_class = CursorPagination
    # Cursor pagination keeps its own fixed order: no ?ordering.
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        return PromotionRecord.objects.restrict(self.request.user, Action.PULL).select_related(
            "triggered_by"
        )
