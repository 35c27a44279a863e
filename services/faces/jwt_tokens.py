"""JWTs for LUNA tokens: HS256 with the payload LUNA clients expect."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path

import jwt

from services.common import config, times

TOKEN_SECRET = config.declare(
    "LUNA_TOKEN_SECRET",
    "",
    "HS256 secret for token JWTs. Empty: generated once into <data dir>/token_secret.",
)


def load_secret() -> str:
    """The signing secret: LUNA_TOKEN_SECRET, else one generated once into the data dir."""
    secret = TOKEN_SECRET.get()
    if secret:
        return secret
    path: Path = config.data_dir() / "token_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def issue(secret: str, token_id: str, account_id: str, expiration: datetime | None) -> str:
    payload = {
        "tokenId": token_id,
        "accountId": account_id,
        "expirationTime": times.to_rfc3339(expiration),
        # A nonce makes each replacement's JWT distinct, so older ones can be refused.
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, secret, algorithm="HS256", headers={"typ": "JWT"})


def decode(secret: str, token: str) -> dict[str, object] | None:
    """The payload of a JWT we signed, or None when it is not one."""
    try:
        return jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
