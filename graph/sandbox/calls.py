"""The sandbox's call log: what each request asked for and how it was answered, never a secret."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def token_digest(token: str) -> str:
    """How the call log names a merchant token: enough to tell tokens apart, useless to anyone who reads it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Call:
    """One request the gateway received, refused ones included. Never holds the sign or a raw token."""

    app_id: str | None
    method: str | None
    sign_type: str | None
    timestamp: str | None
    app_version: str | None  # None when blank or biz_content is unreadable
    bundle_id: str | None  # the default applied when biz_content names none
    app_auth_token_digest: str | None  # token_digest(app_auth_token), None when none was sent
    outcome: str  # "ok", "business_error", a refusal ("invalid-signature", ...), or a Fault name ("BUSY", ...)
    code: str | None  # of the answer sent (v2 form, also for v3); None when the body carried no readable code
    sub_code: str | None
    protocol: str = "v2"  # or "v3"
    encrypted: bool = False  # the request asked for AES content encryption
    app_cert_sn: str | None = None  # certificate mode: the SNs the request carried
    alipay_root_cert_sn: str | None = None

    @property
    def api(self) -> str | None:
        """The method called, by its v2 name whatever the protocol (v3 logs ``GET /v3/a/b/c``: ``a.b.c``)."""
        if self.method is not None and self.method.startswith("GET /v3/"):
            return self.method.removeprefix("GET /v3/").replace("/", ".")
        return self.method

    @property
    def has_app_auth_token(self) -> bool:
        return self.app_auth_token_digest is not None
