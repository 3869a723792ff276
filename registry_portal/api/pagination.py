"""Pagination of list endpoints.

Small tables (organizations, teams, repositories, policies, tokens) use page numbers. Tables
that grow without bound (tags, their history, promotion records) use cursors, which stay as
fast on the thousandth page as on the first and never skip or repeat rows when rows arrive.
"""

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CursorPagination(pagination.CursorPagination):
    """Newest first, by creation time."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-created_at", "-id")


class TagCursorPagination(CursorPagination):
    """Most recently pushed first."""

    ordering = ("-pushed_at", "-id")
