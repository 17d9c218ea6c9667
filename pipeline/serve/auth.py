"""Who is looking: sign-in, the viewer's scope (a rep sees their own leads, a manager every lead), and
CSRF tokens for every form. No secret is ever written to a page, a log or a file."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Viewer:
    """The person using the app: a signed-in user, or, on a loopback app with no users, this machine's user."""

    name: str
    owner: str | None        # the CRM owner value of their leads (reps)
    role: str                # rep or manager
    signed_in: bool

    @property
    def scope(self) -> str | None:
        """The owner whose leads this viewer sees, or None for every lead."""
        return None if self.role == "manager" else (self.owner or "")

    def may_see(self, row: dict[str, Any]) -> bool:
        scope = self.scope
        return scope is None or str(row.get("owner") or "").strip().casefold() == scope.strip().casefold()


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token (made on first use); every form carries it back."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: dict[str, Any], sent: str | None) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and isinstance(sent, str) and hmac.compare_digest(token, sent)
