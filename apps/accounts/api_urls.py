from django.urls import path

from apps.accounts import apis

urlpatterns = [
    path("auth/token/", apis.TokenCreateApi.as_view(), name="api-token-create"),
    path("auth/token/revoke/", apis.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("me/", apis.MeApi.as_view(), name="api-me"),
]
