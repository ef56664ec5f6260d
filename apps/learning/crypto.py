"""Encrypting secrets at rest (tenants' tutor endpoint keys) with Fernet from `cryptography`.

TUTOR_ENCRYPTION_KEYS lists Fernet keys: the first encrypts, every one decrypts (MultiFernet), so
a key is rotated by putting a new one first. With none set, one key is derived from SECRET_KEY
(HKDF-SHA256), so development needs no setup; production sets its own.
"""

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key that is no longer configured."""


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"aula tutor keys"
        ).derive(secret_key.encode())
        keys = (base64.urlsafe_b64encode(derived).decode(),)
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.TUTOR_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plain: str) -> str:
    return _current().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "The tutor's API key cannot be decrypted with the configured keys; set it again."
        ) from exc
