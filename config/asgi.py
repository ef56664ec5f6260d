"""The ASGI application: Django for HTTP (behind the prediction API's fast path), Channels for
websockets (an API token, or the session cookie behind the origin check:
config.websocket_auth)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models (the websocket routes do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.serving.fastpath import PredictFastPath  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from config.websocket_auth import WebsocketAuth  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Predictions a grant covers are answered before Django (apps/serving/fastpath.py).
        "http": PredictFastPath(django_asgi_app),
        "websocket": WebsocketAuth(URLRouter(websocket_urlpatterns)),
    }
)
