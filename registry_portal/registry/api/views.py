"""Views of the registry API: declarations. Lists are restricted with
``<Model>.objects.restrict(user, action)``; writes are checked by
``registry_portal.api.permissions`` and carried out by ``registry.services``."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.response import Response

from registry_portal.accounts.choices import Action
from registry_portal.api.pagination import CursorPagination, TagCursorPagination
from registry_portal.api.permissions import RepositoryAdminForWrites, TagDeleteRight
from registry_portal.registry import services
from registry_portal.registry.filtersets import (
    RepositoryFilterSet,
    TagEventFilterSet,
    TagFilterSet,
)
from registry_portal.registry.models import Repository, Tag, TagEvent

from . import serializers


@extend_schema_view(
    create=extend_schema(
        summary="Create a repository (org admins; anyone in their personal namespace)"
    ),
    update=extend_schema(
        summary="Change a repository's settings (admins)",
        responses=serializers.RepositorySerializer,
    ),
    partial_update=extend_schema(
        summary="Change some of a repository's settings (admins)",
        responses=serializers.RepositorySerializer,
    ),
    destroy=extend_schema(summary="Delete a repository with its tags (admins)"),
)
class RepositoryViewSet(viewsets.ModelViewSet):
    """Repositories the caller may see (public ones, and those their teams have access to)."""

    permission_classes = [RepositoryAdminForWrites]
    filterset_class = RepositoryFilterSet
    ordering_fields = ("name", "created_at", "updated_at")
    ordering = ("namespace__name", "name")

    def get_queryset(self):
        return Repository.objects.restrict(self.request.user, Action.PULL).select_related(
            "namespace"
        )

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return serializers.RepositoryUpdateSerializer
        return serializers.RepositorySerializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.repository_create_in_namespace(
            actor=self.request.user,
            namespace_name=data["namespace"]["name"],
            name=data["name"],
            is_public=data.get("is_public", False),
            immutable_tags=data.get("immutable_tags", False),
            description=data.get("description", ""),
        )

    def update(self, request, *args, **kwargs):
        repository = self.get_object()
        serializer = self.get_serializer(repository, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        repository = services.repository_update(repository=repository, **serializer.validated_data)
        return Response(serializers.RepositorySerializer(repository).data)

    def perform_destroy(self, repository):
        services.repository_delete(repository=repository)


@extend_schema_view(
    destroy=extend_schema(
        summary="Delete a tag (delete right); refused with 409 in a repository with immutable tags"
    ),
)
class TagViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Tags of the repositories the caller may see, most recently pushed first."""

    permission_classes = [TagDeleteRight]
    filterset_class = TagFilterSet
    pagination_class = TagCursorPagination
    # Cursor pagination keeps its own fixed order: no ?ordering.
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        tags = Tag.objects.restrict(self.request.user, Action.PULL).select_related(
            "repository__namespace", "manifest", "pushed_by"
        )
        if self.action == "list":
            tags = tags.defer("manifest__content")
        return tags

    def get_serializer_class(self):
        if self.action == "retrieve":
            return serializers.TagDetailSerializer
        return serializers.TagSerializer

    def perform_destroy(self, tag):
        # The same path as DELETE on /v2/: it refuses tags of immutable repositories.
        services.manifest_delete(
            repository=tag.repository, reference=tag.name, actor=self.request.user
        )


class TagEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The history of the tags of the repositories the caller may see, newest first."""

    serializer_class = serializers.TagEventSerializer
    filterset_class = TagEventFilterSet
    pagination_class = CursorPagination
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        return TagEvent.objects.restrict(self.request.user, Action.PULL).select_related(
            "repository__namespace", "actor"
        )
