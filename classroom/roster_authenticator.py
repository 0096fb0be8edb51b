"""The demo's authenticator: the roster's people, each with the password ``up`` printed.

JupyterHub loads this file from the classroom's hub folder (root only), next to
``passwords.py`` and ``passwords.json`` (salted scrypt hashes, never the passwords). A
university replaces it with the one its accounts live in (README: "Running the course for a
class"): ``pam`` (the same Linux accounts, their system passwords), an OAuthenticator (the
university's single sign-on) or ltiauthenticator (logins from the learning-management system).
"""

from __future__ import annotations

import json
from pathlib import Path

from jupyterhub.auth import Authenticator
from passwords import check_password
from traitlets import Unicode


class RosterAuthenticator(Authenticator):
    """Username and password checked against the hashes in ``password_file``."""

    password_file = Unicode(help="JSON: user name -> {salt, scrypt}, written by up").tag(
        config=True
    )

    def _records(self) -> dict:
        try:
            return json.loads(Path(self.password_file).read_text())
        except (OSError, ValueError) as err:
            self.log.error("cannot read the password file %s: %s", self.password_file, err)
            return {}

    async def authenticate(self, handler, data):
        username = self.normalize_username((data or {}).get("username", ""))
        password = (data or {}).get("password", "")
        record = self._records().get(username)
        if record is None or not check_password(password, record):
            self.log.warning("failed login for %r", username)
            return None
        return username
