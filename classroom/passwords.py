"""Demo passwords: made at ``up``, stored as salted scrypt hashes in the hub's folder (root
only), checked by ``roster_authenticator.RosterAuthenticator``. Standard library only: the hub
imports this file from its own folder."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def new_password() -> str:
    """A demo password: 12 characters, easy to type."""
    return secrets.token_urlsafe(9)


def hash_password(password: str) -> dict[str, str]:
    """A salted scrypt hash, as stored in the hub's password file."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return {"salt": salt.hex(), "scrypt": digest.hex()}


def check_password(password: str, record: dict[str, str]) -> bool:
    """Whether ``password`` matches a record made by :func:`hash_password`."""
    try:
        salt = bytes.fromhex(record["salt"])
    except (KeyError, TypeError, ValueError):
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return hmac.compare_digest(digest.hex(), str(record.get("scrypt", "")))
