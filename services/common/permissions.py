"""Authorization concepts shared by the gateway and the faces service: account types, token
permissions and what a verified caller may see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACCOUNT_TYPES = ("user", "advanced_user", "admin")
# Only these can be created through the API; admin comes from the operator (`luna` CLI / env).
CREATABLE_ACCOUNT_TYPES = ("user", "advanced_user")
VISIBILITY_AREAS = ("account", "all")

CRUD = ("creation", "view", "modification", "deletion")

# Token permission keys and the actions each accepts (LUNA API v6 `permissions` object).
PERMISSION_ACTIONS: dict[str, tuple[str, ...]] = {
    "account": ("view",),
    "face": CRUD,
    "face_attributes": ("view", "deletion"),
    "list": CRUD,
    "event": ("creation", "view", "deletion"),
    "attribute": ("creation", "view", "deletion"),
    "handler": CRUD,
    "verifier": CRUD,
    "task": CRUD,
    "face_sample": ("creation", "view", "deletion"),
    "body_sample": ("creation", "view", "deletion"),
    "image": ("creation", "view", "deletion"),
    "object": ("creation", "view", "deletion"),
    "token": CRUD,
    "resources": ("iso", "sdk", "liveness"),
    "matching": ("face", "body"),
    "lambda": CRUD,
}


# `emit_events` is an object, not an action list: {"allowed": 0|1, "white_list": [handler
# ids], "black_list": [handler ids]}.
EMIT_EVENTS = "emit_events"


def validate_permissions(perms: dict[str, Any]) -> str | None:
    """Return a description of the first invalid entry, or None when `perms` is valid."""
    for key, actions in perms.items():
        if key == EMIT_EVENTS:
            if not isinstance(actions, dict):
                return "permission 'emit_events' must be an object"
            continue
        allowed = PERMISSION_ACTIONS.get(key)
        if allowed is None:
            return f"unknown permission '{key}'"
        for action in actions:
            if action not in allowed:
                return f"permission '{key}' does not accept '{action}'"
        if len(set(actions)) != len(actions):
            return f"permission '{key}' lists an action twice"
    return None


@dataclass(frozen=True)
class Principal:
    """Who is calling, after credentials were verified."""

    account_id: str
    account_type: str
    # How the caller authenticated: "basic", "bearer" or "account_id" (deprecated header).
    method: str
    token_id: str = ""
    permissions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    visibility_area: str = "account"
    # The token's emit_events object; None means not granted.
    emit_events: dict[str, Any] | None = None

    @property
    def sees_all(self) -> bool:
        """May read other accounts' data (GET/HEAD and matching only)."""
        if self.account_type not in ("advanced_user", "admin"):
            return False
        if self.method == "account_id":
            # The deprecated header pins every request to that one account.
            return False
        if self.method == "bearer":
            return self.visibility_area == "all"
        return True

    def allows(self, resource: str, action: str) -> bool:
        """Token permissions restrict bearer callers; accounts' own rights are fixed."""
        if self.method != "bearer":
            return True
        return action in self.permissions.get(resource, ())


def to_pb(perms: dict[str, Any]) -> Any:
    """LUNA `permissions` JSON -> luna.faces.v1.Permissions."""
    from luna.faces.v1 import accounts_pb2

    pb = accounts_pb2.Permissions(
        resources={
            key: accounts_pb2.Actions(actions=list(actions))
            for key, actions in perms.items()
            if key != EMIT_EVENTS
        }
    )
    emit = perms.get(EMIT_EVENTS)
    if emit is not None:
        pb.emit_events.CopyFrom(
            accounts_pb2.EmitEvents(
                allowed=bool(emit.get("allowed", 1)),
                white_list=emit.get("white_list", []),
                black_list=emit.get("black_list", []),
            )
        )
    return pb


def from_pb(pb: Any) -> dict[str, Any]:
    """luna.faces.v1.Permissions -> LUNA `permissions` JSON."""
    perms: dict[str, Any] = {k: list(v.actions) for k, v in sorted(pb.resources.items())}
    if pb.HasField("emit_events"):
        emit: dict[str, Any] = {"allowed": int(pb.emit_events.allowed)}
        if pb.emit_events.white_list:
            emit["white_list"] = list(pb.emit_events.white_list)
        if pb.emit_events.black_list:
            emit["black_list"] = list(pb.emit_events.black_list)
        perms[EMIT_EVENTS] = emit
    return perms
