"""Errors a service raises that every caller understands; the API's exception handler
(apps/core/api/errors.py) answers each, pages show its message."""


class Conflict(Exception):
    """The request is valid but the object's state refuses it (the API's 409 "conflict")."""
