"""Views of the scanning API: declarations. Reports, components and findings are those of
manifests present in a repository the caller may see (``scanning.selectors``); the retry,
the OSV sync and the upload are ``scanning.services`` calls."""

from django.db.models import Prefetch
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from registry_portal.accounts.choices import Action
from registry_portal.api.pagination import CursorPagination
from registry_portal.api.permissions import Authenticated, ReadOrAuthenticated
from registry_portal.registry.models import Repository, RepositoryManifest
from scanning import services
from scanning.filtersets import ComponentFilterSet, FindingFilterSet, ScanReportFilterSet
from scanning.models import Component, Finding, OsvSnapshot, ScanReport

from . import serializers
from .permissions import PushToHoldingRepository, Superuser


class ScanReportPagination(CursorPagination):
    """Most recently queued first."""

    ordering = ("-queued_at", "-id")


class NewestRowsPagination(CursorPagination):
    """Newest first, by id: components and findings have no time of their own."""

    ordering = ("-id",)


@extend_schema_view(
    list=extend_schema(summary="Scan reports of the manifests in repositories you may see"),
    retrieve=extend_schema(summary="A scan report; an index's lists its platform reports"),
)
class ScanReportViewSet(viewsets.ReadOnlyModelViewSet):
    """One scan report per manifest: status, where the inventory came from, and the count of
    distinct vulnerabilities per severity. Components and findings are at /components/ and
    /findings/ (``?report_id=``)."""

    permission_classes = [ReadOrAuthenticated]
    filterset_class = ScanReportFilterSet
    pagination_class = ScanReportPagination
    # Cursor pagination keeps its own fixed order: no ?ordering.
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        user = self.request.user
        visible_links = (
            RepositoryManifest.objects.filter(
                repository__in=Repository.objects.restrict(user, Action.PULL).values("pk")
            )
            .select_related("repository__namespace")
            .order_by("repository__namespace__name", "repository__name")
        )
        return (
            ScanReport.objects.restrict(user, Action.PULL)
            .select_related("manifest")
            .defer("manifest__content")
            .prefetch_related(
                Prefetch(
                    "manifest__repository_links", queryset=visible_links, to_attr="visible_links"
                )
            )
        )

    def get_serializer_class(self):
        if self.action == "list":
            return serializers.ScanReportSerializer
        return serializers.ScanReportDetailSerializer

    @extend_schema(
        summary="Queue a failed scan again (push on a repository holding the manifest)",
        description="An index is retried with its failed platforms. Only a failed scan can be "
        "retried: any other status is a field error on `status`.",
        request=None,
        responses={202: serializers.ScanReportDetailSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[PushToHoldingRepository],
        filter_backends=[],
    )
    def retry(self, request, pk=None):
        report = services.scan_retry(report=self.get_object())
        report = self.get_queryset().get(pk=report.pk)
        return Response(
            self.get_serializer(report).data,
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema_view(
    list=extend_schema(
        summary="Components (packages) found in the images you may see",
        description="An index's components belong to its platform reports.",
    ),
    retrieve=extend_schema(summary="A component"),
)
class ComponentViewSet(viewsets.ReadOnlyModelViewSet):
    """Components of the scan reports the caller may see, with their licenses."""

    serializer_class = serializers.ComponentSerializer
    filterset_class = ComponentFilterSet
    pagination_class = NewestRowsPagination
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        return (
            Component.objects.restrict(self.request.user, Action.PULL)
            .select_related("report__manifest")
            .defer("report__manifest__content")
            .prefetch_related("license_ids")
        )


@extend_schema_view(
    list=extend_schema(
        summary="Findings (vulnerabilities affecting components) in the images you may see",
        description="Per the OSV snapshot each report was matched against. An index's "
        "findings belong to its platform reports.",
    ),
    retrieve=extend_schema(summary="A finding"),
)
class FindingViewSet(viewsets.ReadOnlyModelViewSet):
    """Findings of the scan reports the caller may see."""

    serializer_class = serializers.FindingSerializer
    filterset_class = FindingFilterSet
    pagination_class = NewestRowsPagination
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        return (
            Finding.objects.restrict(self.request.user, Action.PULL)
            .select_related("report__manifest", "component", "vulnerability")
            .defer("report__manifest__content", "vulnerability__raw")
        )


@extend_schema_view(
    list=extend_schema(summary="OSV snapshots (imports of vulnerability data), newest first"),
    retrieve=extend_schema(summary="An OSV snapshot"),
)
class OsvSnapshotViewSet(viewsets.ReadOnlyModelViewSet):
    """The vulnerability database: each import of OSV data is a snapshot, and the active one
    is what scans and re-matches use. Any authenticated user may read them; superusers
    trigger a sync or upload a zip."""

    serializer_class = serializers.OsvSnapshotSerializer
    permission_classes = [Authenticated]
    filter_backends = []

    def get_queryset(self):
        return OsvSnapshot.objects.order_by("-created_at", "-id")

    @extend_schema(
        summary="Import an uploaded OSV zip as the new active snapshot (superusers)",
        description="The offline path. All or nothing: a damaged archive, or one with no "
        "valid record, is a field error on `archive` and saves nothing. Malformed entries "
        "are skipped and listed on the snapshot. Stored images are re-matched afterwards, "
        "without re-reading their layers.",
        request={"multipart/form-data": serializers.OsvUploadSerializer},
        responses={201: serializers.OsvSnapshotSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        permission_classes=[Superuser],
        parser_classes=[MultiPartParser],
        pagination_class=None,
    )
    def upload(self, request):
        serializer = serializers.OsvUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        archive = serializer.validated_data["archive"]
        snapshot = services.osv_import_upload(archive=archive, name=archive.name)
        return Response(
            self.get_serializer(snapshot).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Queue a sync from the configured OSV URL (superusers)",
        description="Downloads OSV_SYNC_URL (conditional on its ETag) in the background; the "
        "result appears as a new snapshot. A conflict (409) when no URL is configured.",
        request=None,
        responses={202: serializers.OsvSyncSerializer},
    )
    @action(detail=False, methods=["post"], permission_classes=[Superuser], pagination_class=None)
    def sync(self, request):
        source = services.osv_sync_queue()
        body = {"source": source, "message": "The sync is queued; a new snapshot will appear."}
        return Response(body, status=status.HTTP_202_ACCEPTED)
