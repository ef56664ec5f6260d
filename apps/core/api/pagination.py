"""Pagination for every API list: ?page=N&page_size=M (at most 200)."""

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def paginated_response(request, view, queryset, serializer_class, context=None):
    """One page of `queryset` serialised with `serializer_class`, in the paginated envelope."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(
        serializer_class(page, many=True, context=context or {}).data
    )
