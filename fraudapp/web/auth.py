"""Bearer-token decision for the admin and ingest routes (CONTRACT §7). Pure."""

from __future__ import annotations

import hmac
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Denied:
    status: int
    reason: str


def check_bearer(authorization: str | None, token: str, setting: str) -> Denied | None:
    """None when `authorization` carries `token`; else why not (403 unset, 401 wrong).

    `setting` is the environment variable that configures the token, named in the 403 so
    that an operator knows how to turn the route on. The token itself is never echoed.
    """
    if not token:
        return Denied(403, f"this route is disabled: set {setting} to enable it")
    if not authorization:
        return Denied(401, "missing 'Authorization: Bearer <token>' header")
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return Denied(401, "expected 'Authorization: Bearer <token>'")
    # Constant-time comparison on bytes: no timing hint about how much of a guess matched.
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return Denied(401, "invalid token")
    return None
