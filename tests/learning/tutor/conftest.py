"""The stand-in model server, and a port where nothing listens."""

import socket

import pytest

from tests.learning.tutor.standin import StandInServer


@pytest.fixture
def standin():
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
