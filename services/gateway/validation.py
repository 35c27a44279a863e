"""Request validation against the gateway's OpenAPI document, with LUNA's error codes and texts.

`RequestValidator(spec)` precompiles, per operationId, a JSON Schema (Draft 2020-12) validator for
the JSON request body and a converter + validator for every query parameter. OpenAPI 3.0 specifics
are translated once at construction: `$ref`s are inlined, `nullable: true` becomes a `null` type,
boolean `exclusiveMinimum`/`exclusiveMaximum` become numeric ones.

Each schema is compiled twice: a `jsonschema_rs` (Rust) validator answers the common case, a valid
input, in microseconds; only when it says invalid does the `jsonschema` validator run, and its
verdict and errors are the ones the client sees. The fast validator checks the same formats as the
slow one (uuid and date-time, by the same functions) and ignores the others, so it is never more
lenient; where it is stricter (Rust regexes: ASCII `\\d`, no `$` before a trailing newline) the
slow one decides. tests/gateway/test_validation_fast.py compares the two over the schemas.

Errors (codes and detail texts as LUNA returns them; see services/common/luna_errors.yaml):

- 12022 `Failed to validate input json. Path: '<dotted.path>', message: '<msg>'` for a body that
  does not match its schema; `<msg>` is phrased like LUNA's (pydantic) messages, e.g.
  `extra fields not permitted`, `field required`, `value is not a valid integer`,
  `ensure this value has at most 128 characters`, `value is not a valid uuid`.
- 12030 `Request does not contain data` for an empty body where one is required.
- 12002 `Request does not contain json` for a body that is not parseable JSON; 12022 also for
  one nested deeper than 24 levels or holding a NUL (`jsonbody`, the one parser of input).
- Integers the document leaves unbounded are bounded to int32 (our protos and columns).
- 12023 `Content type is unacceptable allowed types: '<types>'` for a Content-Type the operation
  does not accept; 12024 `Unsupported media type` for a body sent without any Content-Type.
- 12012 `Bad query parameters '<name>'` for a query value that cannot be converted or is out of
  range; 12014 `Required parameters '<name>' not found` for a missing required query parameter;
  12016 `No one parameters '[<a>, <b>]' not found` when none of an `x-luna-require-one-of` group
  of an operation is present.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from services.common import ids, luna_json
from services.common.errors import (
    NO_DATA,
    NO_ONE_QUERY_PARAM,
    REQUIRED_QUERY_PARAM,
    UNACCEPTABLE_CONTENT_TYPE,
    UNSUPPORTED_MEDIA_TYPE,
    LunaError,
    bad_json,
    bad_query,
)
from services.gateway import jsonbody

INT32_MAX = 2**31 - 1
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
JSON_TYPES = ("application/json",)

_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_INT_RE = re.compile(r"^[+-]?\d+$")
_OPENAPI_ONLY = frozenset(
    {
        "example",
        "examples",
        "xml",
        "externalDocs",
        "discriminator",
        "readOnly",
        "writeOnly",
        "deprecated",
    }
)

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or ids.is_uuid(value)


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATETIME_RE.match(value):
        return False
    datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    return True


def _datetime_ok(value: object) -> bool:
    try:
        return _is_datetime(value)
    except ValueError:
        return False


def _formats_in(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("format"), str):
            found.add(node["format"])
        for value in node.values():
            _formats_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _formats_in(value, found)
    return found


def _accept(value: object) -> bool:
    return True


class FastValidator:
    """A schema's `jsonschema_rs` validator, checking exactly the formats `_FORMATS` checks.

    `is_valid` True means the slow validator would find no error either; False (or an
    exception inside the Rust validator) means "ask the slow one".
    """

    __slots__ = ("_rs",)

    def __init__(self, schema: Mapping[str, Any]) -> None:
        checks: dict[str, Callable[[Any], bool]] = {"uuid": _is_uuid, "date-time": _datetime_ok}
        formats = {name: checks.get(name, _accept) for name in _formats_in(schema, set())}
        self._rs = jsonschema_rs.Draft202012Validator(
            schema, formats=formats, validate_formats=True
        )

    def is_valid(self, instance: Any) -> bool:
        try:
            return bool(self._rs.is_valid(instance))
        except Exception:  # anything odd is the slow validator's to judge
            return False


# ---------------------------------------------------------------------------------------------
# OpenAPI 3.0 -> JSON Schema 2020-12


def _resolve_pointer(spec: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported: {ref}")
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _deref(spec: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        node = _resolve_pointer(spec, node["$ref"])
    return node


def _to_json_schema(spec: Mapping[str, Any], node: Any, stack: tuple[str, ...] = ()) -> Any:
    """Inline `$ref`s and translate OpenAPI 3.0 keywords into a standalone JSON Schema."""
    if isinstance(node, list):
        return [_to_json_schema(spec, n, stack) for n in node]
    if not isinstance(node, Mapping):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in stack:
            raise ValueError(f"recursive schema reference {ref} is not supported")
        return _to_json_schema(spec, _resolve_pointer(spec, ref), (*stack, ref))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _OPENAPI_ONLY or key.startswith("x-"):
            continue
        if key in ("properties", "patternProperties", "$defs", "definitions"):
            out[key] = {k: _to_json_schema(spec, v, stack) for k, v in value.items()}
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            continue  # handled below
        elif key == "nullable":
            continue
        else:
            out[key] = _to_json_schema(spec, value, stack)
    for excl, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(excl) is True and bound in out:
            out[excl] = out.pop(bound)
    types = out.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        # Integers travel as int32 in our protos and PostgreSQL `integer` columns: an
        # unbounded one in the document is bounded here rather than failing downstream.
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = INT32_MAX
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = -INT32_MAX - 1
    if node.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


# ---------------------------------------------------------------------------------------------
# LUNA (pydantic-style) messages, worded by services.common.luna_json as the events pipeline
# words them


def _describe(error: ValidationError) -> tuple[list[Any], str]:
    """Return (path, message) of one jsonschema error, phrased like LUNA's messages."""
    path = list(error.absolute_path)
    v, value, inst, schema = error.validator, error.validator_value, error.instance, error.schema
    if v == "additionalProperties" and isinstance(inst, dict):
        known = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
        patterns = schema.get("patternProperties", {}) if isinstance(schema, Mapping) else {}
        for key in inst:
            if key not in known and not any(re.search(p, key) for p in patterns):
                return [*path, key], "extra fields not permitted"
        return path, "extra fields not permitted"
    if v == "required" and isinstance(inst, dict):
        missing = next((r for r in value if r not in inst), value[0] if value else "")
        return [*path, missing], "field required"
    if v == "type":
        return path, luna_json.type_message(value, inst)
    bound = luna_json.bound_message(v, value)
    if bound is not None:
        return path, bound
    if v == "uniqueItems":
        return path, "the list has duplicated items"
    if (
        v in ("pattern", "format")
        and isinstance(schema, Mapping)
        and schema.get("format") == "uuid"
    ):
        return path, "value is not a valid uuid"
    if v == "format" and value == "date-time":
        return path, "invalid datetime format"
    if v == "format":
        return path, f"value is not a valid {value}"
    if v == "pattern":
        return path, f'string does not match regex "{value}"'
    if v == "enum":
        return path, luna_json.enum_message(value)
    if v == "const":
        return path, f"unexpected value; permitted: {luna_json.shown(value)}"
    if v == "not":
        return path, "value is not permitted"
    if v == "oneOf" and not error.context:
        return path, "value matches more than one allowed schema"
    return path, error.message


def _pick(errors: list[ValidationError]) -> ValidationError:
    """The error LUNA would report first: the best match, descending into oneOf/anyOf branches."""
    error = best_match(errors)
    assert error is not None
    if error.validator in ("oneOf", "anyOf") and error.context:
        branch = _discriminated_branch(error.context)
        if branch:
            return _pick(branch)
    return error


def _discriminated_branch(context: list[ValidationError]) -> list[ValidationError] | None:
    """The errors of the one branch whose top-level enum/required checks the instance passes.

    A branch failing those (`target: events` against the faces branch, a missing `target`)
    is not what the client meant; when exactly one branch is left, its error is the useful one.
    """
    branches: dict[Any, list[ValidationError]] = {}
    for e in context:
        branches.setdefault(e.schema_path[0] if e.schema_path else None, []).append(e)
    meant = [
        errs
        for errs in branches.values()
        if not any(
            e.validator in ("enum", "const", "required") and len(e.relative_path) <= 1 for e in errs
        )
    ]
    return meant[0] if len(meant) == 1 else None


def _body_error(error: ValidationError) -> LunaError:
    path, message = _describe(error)
    dotted = ".".join(str(p) for p in path)
    return bad_json(dotted, message)


def _apply_defaults(schema: Any, instance: Any) -> None:
    if isinstance(instance, dict) and isinstance(schema, Mapping):
        for name, sub in schema.get("properties", {}).items():
            if name in instance:
                _apply_defaults(sub, instance[name])
            elif isinstance(sub, Mapping) and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
        for sub in schema.get("allOf", ()):
            _apply_defaults(sub, instance)
    elif isinstance(instance, list) and isinstance(schema, Mapping):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in instance:
                _apply_defaults(items, item)


def _defaults_only(schema: Any) -> dict[str, Any] | None:
    """The parts of `schema` that `_apply_defaults` acts on (the properties, allOf branches
    and items leading to a `default`), or None where it would do nothing: computed once per
    operation, so a request walks only the paths to its defaults, most requests none."""
    if not isinstance(schema, Mapping):
        return None
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        pruned = _defaults_only(sub)
        if isinstance(sub, Mapping) and "default" in sub:
            pruned = {**(pruned or {}), "default": sub["default"]}
        if pruned is not None:
            props[name] = pruned
    if props:
        out["properties"] = props
    all_of = [p for p in (_defaults_only(sub) for sub in schema.get("allOf", ())) if p]
    if all_of:
        out["allOf"] = all_of
    items = _defaults_only(schema.get("items"))
    if items is not None:
        out["items"] = items
    return out or None


# ---------------------------------------------------------------------------------------------
# Query parameters

Converter = Callable[[str], Any]


def _scalar_converter(schema: Mapping[str, Any]) -> Converter:
    types = schema.get("type")
    t = next((x for x in types if x != "null"), None) if isinstance(types, list) else types

    if t == "integer":

        def to_int(raw: str) -> Any:
            if not _INT_RE.match(raw.strip()):
                raise ValueError(raw)
            return int(raw)

        return to_int
    if t == "number":
        return float
    if t == "boolean":

        def to_bool(raw: str) -> Any:
            low = raw.strip().lower()
            if low in ("1", "true"):
                return True
            if low in ("0", "false"):
                return False
            raise ValueError(raw)

        return to_bool
    return lambda raw: raw


@dataclass
class _QueryParam:
    name: str
    required: bool
    has_default: bool
    default: Any
    convert: Converter
    validator: Draft202012Validator
    fast: FastValidator


@dataclass
class _Operation:
    operation_id: str
    method: str
    path: str
    query: list[_QueryParam] = field(default_factory=list)
    require_one_of: list[list[str]] = field(default_factory=list)
    body_required: bool = False
    body_types: tuple[str, ...] = ()
    body_schema: dict[str, Any] | None = None
    body_validator: Draft202012Validator | None = None
    body_fast: FastValidator | None = None
    body_defaults: dict[str, Any] | None = None


class RequestValidator:
    """Validates request bodies, content types and query strings per operationId."""

    def __init__(self, spec: dict) -> None:
        self._spec = spec
        self._ops: dict[str, _Operation] = {}
        for path, item in spec.get("paths", {}).items():
            item = _deref(spec, item)
            shared = item.get("parameters", [])
            for method, raw_op in item.items():
                if method not in HTTP_METHODS:
                    continue
                op_id = raw_op.get("operationId")
                if not op_id:
                    raise ValueError(f"{method.upper()} {path} has no operationId")
                if op_id in self._ops:
                    raise ValueError(f"duplicate operationId {op_id}")
                self._ops[op_id] = self._compile(op_id, method, path, raw_op, shared)

    # -- construction ---------------------------------------------------------------------
    def _compile(
        self, op_id: str, method: str, path: str, raw: Mapping[str, Any], shared: list[Any]
    ) -> _Operation:
        spec = self._spec
        op = _Operation(op_id, method, path)
        params: dict[tuple[str, str], Mapping[str, Any]] = {}
        for p in [*shared, *raw.get("parameters", [])]:
            p = _deref(spec, p)
            params[(p["name"], p["in"])] = p
        for (name, where), p in params.items():
            if where != "query":
                continue
            schema = _to_json_schema(spec, p.get("schema", {}))
            if schema.get("type") == "array":
                item_conv = _scalar_converter(schema.get("items", {}))

                def convert(raw: str, item_conv: Converter = item_conv) -> Any:
                    return [item_conv(x) for x in raw.split(",")] if raw != "" else []

            else:
                convert = _scalar_converter(schema)
            op.query.append(
                _QueryParam(
                    name=name,
                    required=bool(p.get("required")),
                    has_default="default" in schema,
                    default=schema.get("default"),
                    convert=convert,
                    validator=Draft202012Validator(schema, format_checker=_FORMATS),
                    fast=FastValidator(schema),
                )
            )
        op.require_one_of = [list(g) for g in raw.get("x-luna-require-one-of", [])]
        body = _deref(spec, raw.get("requestBody")) if raw.get("requestBody") else None
        if body:
            op.body_required = bool(body.get("required"))
            content = body.get("content", {})
            op.body_types = tuple(ct.lower() for ct in content)
            json_ct = next((ct for ct in content if ct.lower() in JSON_TYPES), None)
            if json_ct is not None and "schema" in content[json_ct]:
                schema = _to_json_schema(spec, content[json_ct]["schema"])
                Draft202012Validator.check_schema(schema)
                op.body_schema = schema
                op.body_validator = Draft202012Validator(schema, format_checker=_FORMATS)
                op.body_fast = FastValidator(schema)
                op.body_defaults = _defaults_only(schema)
        return op

    # -- introspection --------------------------------------------------------------------
    @property
    def operation_ids(self) -> frozenset[str]:
        return frozenset(self._ops)

    def _op(self, operation_id: str) -> _Operation:
        try:
            return self._ops[operation_id]
        except KeyError:
            raise KeyError(f"unknown operationId {operation_id!r}") from None

    def body_schema(self, operation_id: str) -> dict[str, Any] | None:
        """The compiled (standalone JSON Schema) body schema of an operation, if it has one."""
        return self._op(operation_id).body_schema

    # -- validation -------------------------------------------------------------------------
    def validate_content_type(self, operation_id: str, content_type: str | None) -> str:
        """Check the request Content-Type against the operation's; return the bare media type."""
        op = self._op(operation_id)
        if not content_type:
            raise LunaError(UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
        media = content_type.split(";", 1)[0].strip().lower()
        if not op.body_types or "*/*" in op.body_types or media in op.body_types:
            return media
        allowed = ", ".join(op.body_types)
        raise LunaError(
            UNACCEPTABLE_CONTENT_TYPE, f"Content type is unacceptable allowed types: '{allowed}'"
        )

    def parse_json_body(self, operation_id: str, raw: bytes | str | None) -> Any:
        """Parse a raw JSON body and validate it (12030: empty but required, 12002: not JSON)."""
        op = self._op(operation_id)
        if raw is None or (isinstance(raw, (bytes, str)) and not raw.strip()):
            if op.body_required:
                raise LunaError(NO_DATA, "Request does not contain data")
            return None
        return self.validate_body(operation_id, jsonbody.loads(raw))

    def validate_body(self, operation_id: str, body: Any) -> Any:
        """Validate a parsed JSON body; fill in schema defaults (in place) and return it."""
        op = self._op(operation_id)
        if body is None and op.body_required:
            raise LunaError(NO_DATA, "Request does not contain data")
        if op.body_validator is None or body is None:
            return body
        if op.body_fast is None or not op.body_fast.is_valid(body):
            errors = list(op.body_validator.iter_errors(body))
            if errors:
                raise _body_error(_pick(errors))
        if op.body_defaults is not None:
            _apply_defaults(op.body_defaults, body)
        return body

    def validate_query(self, operation_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """Convert and check the query parameters the operation declares; apply defaults.

        Parameters the operation does not declare are ignored, like LUNA does.
        """
        op = self._op(operation_id)
        out: dict[str, Any] = {}
        for p in op.query:
            if p.name not in query:
                if p.required:
                    raise LunaError(
                        REQUIRED_QUERY_PARAM, f"Required parameters '{p.name}' not found"
                    )
                if p.has_default:
                    out[p.name] = copy.deepcopy(p.default)
                continue
            try:
                value = p.convert(query[p.name])
            except (ValueError, TypeError):
                raise bad_query(p.name) from None
            if not p.fast.is_valid(value) and not p.validator.is_valid(value):
                raise bad_query(p.name)
            out[p.name] = value
        for group in op.require_one_of:
            if not any(name in query for name in group):
                names = ", ".join(group)
                raise LunaError(NO_ONE_QUERY_PARAM, f"No one parameters '[{names}]' not found")
        return out
