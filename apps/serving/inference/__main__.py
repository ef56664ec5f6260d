"""`python -m apps.serving.inference [--host H] [--port P] [--workers N]`: the inference pool
(uvicorn on apps.serving.inference.asgi). Bind it to loopback or a private network only: the
web process is its one client."""

import argparse
import os
from urllib.parse import urlsplit

import uvicorn


def main(argv: list[str] | None = None) -> None:
    url = urlsplit(os.environ.get("INFERENCE_URL") or "http://127.0.0.1:8001")
    parser = argparse.ArgumentParser(prog="python -m apps.serving.inference", description=__doc__)
    parser.add_argument("--host", default=url.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=url.port or 8001)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("INFERENCE_WORKERS", 1)))
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    uvicorn.run(
        "apps.serving.inference.asgi:application",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        lifespan="on",
        # The web process keeps connections open: keep them longer than its idle pool does.
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
