"""The stand-in model server, and a port where nothing listens."""

import socket

import pytest

from tests.learning.tutor.standin import StandInServer


@pytest.fixture
def standin(settings):
    """The stand-in server on 127.0.0.1, a loopback address the tutor refuses unless a platform
    administrator allow-lists it: these tests do, as one would for a model server on the
    school's own network (tests/learning/tutor/test_egress.py tests the refusals)."""
    settings.TUTOR_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]
    server = StandInServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port():
    """A port bound but not listening: connecting to it is refused, and no other test or
    process can take it meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
