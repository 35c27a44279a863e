"""The one parser of request JSON: depth and NUL limits, strict UTF-8, NUL-free queries."""

from __future__ import annotations

import pytest

from services.common import errors
from services.gateway import jsonbody


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def _error(raw: bytes, where: tuple[str, ...] = ()) -> errors.LunaError:
    with pytest.raises(errors.LunaError) as err:
        jsonbody.loads(raw, where)
    return err.value


def test_depth_limit() -> None:
    assert jsonbody.loads(_nested(jsonbody.MAX_DEPTH)) is not None
    assert jsonbody.loads(b"[" * 24 + b"1" + b"]" * 24) is not None
    for raw in (_nested(jsonbody.MAX_DEPTH + 1), b"[" * 5000 + b"]" * 5000, b"[" * 200_000):
        err = _error(raw)
        assert err.code == errors.BAD_JSON and err.http_status == 400
        assert "nested deeper than 24 levels" in err.detail


def test_nul_in_strings_and_keys() -> None:
    err = _error(b'{"user_data": "a\\u0000b"}')
    assert err.code == errors.BAD_JSON and "Path: 'user_data'" in err.detail
    err = _error(b'{"images": [{"meta": {"x\\u0000": 1}}]}')
    assert "Path: 'images.0.meta'" in err.detail and "key" in err.detail
    err = _error(b'{"tags": ["ok", "\\u0000"]}')
    assert "Path: 'tags.1'" in err.detail
    err = _error(b'{"k": "\\u0000"}', ("policies",))
    assert "Path: 'policies.k'" in err.detail
    assert jsonbody.loads(b'{"text": "\\u0001 tab\\t ok"}') == {"text": "\x01 tab\t ok"}


def test_not_json() -> None:
    for raw in (b"{", b'"\\ud800"', b"\xff\xfe", b"NaN", b"[1,]"):
        assert _error(raw).code == errors.NOT_JSON, raw


def test_query_without_nul() -> None:
    jsonbody.check_query({"page": "1", "user_data": "visitor"})
    for query in ({"user_data": "a\x00"}, {"x\x00": "1"}):
        with pytest.raises(errors.LunaError) as err:
            jsonbody.check_query(query)
        assert err.value.code == errors.BAD_QUERY_PARAM
        assert "\x00" not in err.value.detail


def test_limits_hold_whichever_way_a_document_is_checked() -> None:
    """Small documents are judged from their text, larger ones walked: both refuse the same."""
    small_nul = b'{"a": "\\u0000"}'
    assert "Path: 'a'" in _error(small_nul).detail
    assert "Path: 'a'" in _error(small_nul.decode()).detail  # str input too
    # Many containers (past the text shortcut) but shallow: accepted; with a NUL: refused.
    wide = b"[" + b",".join(b'{"k": [1]}' for _ in range(40)) + b"]"
    assert len(jsonbody.loads(wide)) == 40
    wide_nul = wide[:-1] + b',{"k": ["\\u0000"]}]'
    assert "Path: '40.k.0'" in _error(wide_nul).detail
    # An escaped backslash before "u0000" is no NUL: the full check lets it through.
    assert jsonbody.loads(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}
    # Brackets inside strings count against the shortcut only, never against the document.
    assert jsonbody.loads(b'{"a": "' + b"[" * 100 + b'"}') == {"a": "[" * 100}
    assert jsonbody.loads("[" * 24 + "1" + "]" * 24) is not None
    assert "nested deeper" in _error("[" * 25 + "1" + "]" * 25).detail
