"""Pagination for every API list: ?page=N&page_size=M (at most 200). A page or page size that
is not a whole number in range is a 400; a page past the last is a 404."""

from rest_framework import pagination

from apps.core.api.params import whole_number_param, whole_number_schema

MAX_PAGE = 10**9  # far past any list; keeps the number a plain integer everywhere


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()  # the schema says a page is a number

    def get_page_size(self, request):
        return whole_number_param(
            request,
            self.page_size_query_param,
            default=self.page_size,
            minimum=1,
            maximum=self.max_page_size,
        )

    def get_page_number(self, request, paginator):
        return whole_number_param(
            request, self.page_query_param, default=1, minimum=1, maximum=MAX_PAGE
        )

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: whole_number_schema(minimum=1, maximum=MAX_PAGE),
            self.page_size_query_param: whole_number_schema(minimum=1, maximum=self.max_page_size),
        }
        for parameter in parameters:
            parameter["schema"] = bounds[parameter["name"]]
        return parameters
