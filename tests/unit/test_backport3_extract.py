"""LUNA 3 extraction options and geometry, without a network."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from luna.estimator.v1 import estimator_pb2 as epb

from services.common import errors
from services.gateway.backport3 import extract as ex


def options(query: str) -> ex.Options:
    return ex.Options.from_query(make_mocked_request("POST", "/4/storage/descriptors?" + query))


def test_query_flags_and_thresholds() -> None:
    o = options(
        "estimate_attributes=1&estimate_quality=1&score_threshold=0.4&yaw__lt=30&roll__lt=999"
    )
    assert o.attributes and o.quality and not o.emotions and o.extract_descriptor
    assert o.score_threshold == 0.4
    assert o.angles == {"yaw": 30.0}  # out-of-range angles are ignored, as documented
    assert o.estimations() == [
        "basic_attributes",
        "face_descriptor",
        "head_pose",
        "landmarks5",
        "quality",
    ]
    assert options("extract_descriptor=0").estimations() == ["landmarks5"]
    # Warps have no detection: no landmarks, no head pose.
    assert options("warped_image=1&estimate_head_pose=1").estimations() == ["face_descriptor"]


@pytest.mark.parametrize(
    "query", ["estimate_quality=2", "score_threshold=1.5", "score_threshold=x", "warped_image=yes"]
)
def test_bad_query_values(query: str) -> None:
    with pytest.raises(errors.LunaError) as info:
        options(query)
    assert info.value.code == 12012


def test_ethnicities_have_no_model() -> None:
    with pytest.raises(errors.LunaError) as info:
        options("estimate_ethnicities=1").estimations()
    assert info.value.code == 11044


def test_policies_become_options() -> None:
    o = ex.Options.from_policies(
        {
            "estimate_emotions": 1,
            "yaw_threshold": 180,
            "pitch_threshold": 20,
            "score_threshold": 0.3,
        },
        warped=False,
    )
    assert o.emotions and o.angles == {"pitch": 20.0} and o.score_threshold == 0.3


def test_rect_iso_is_centred_on_the_eyes() -> None:
    face = epb.Face(
        box=epb.Box(x=100, y=100, width=100, height=120),
        landmarks5=[epb.Point(x=130, y=150), epb.Point(x=170, y=150)],
    )
    r = ex.rect_iso(face)
    assert (r["width"], r["height"]) == (160, 213)  # 4 eye distances, 4:3
    assert r["x"] + r["width"] / 2 == 150  # centred between the eyes
    assert r["y"] == round(150 - 0.4 * 213.33)


async def test_portraits_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.gateway.backport3 import storage
    from services.gateway.backport3.core import Caller

    async def caller(request: object) -> Caller:
        return Caller("00000000-0000-4000-8000-000000000000")

    monkeypatch.setattr(storage, "caller", caller)
    monkeypatch.setenv("LUNA_BACKPORT3_ENABLE_PORTRAITS", "0")
    request = make_mocked_request("GET", "/4/storage/portraits/x", match_info={"portrait_id": "x"})
    with pytest.raises(errors.LunaError) as info:
        await storage.get_portrait(request)
    assert (info.value.code, info.value.http_status) == (11070, 403)


def test_every_catalogue_operation_is_routed() -> None:
    from services.gateway.backport3 import ROUTES
    from services.gateway.backport3.operations import OPERATION_IDS
    from services.gateway.backport3.system import LISTENER_ONLY

    served = {(m, p) for m, p, _ in [*ROUTES, *LISTENER_ONLY]}
    # 56 operations less /metrics, the two portrait operations sharing one route.
    assert served == set(OPERATION_IDS) and len(served) == 54


@pytest.mark.filterwarnings("ignore::aiohttp.web.NotAppKeyWarning")
async def test_metrics_off_is_documented_12049(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web

    from services.gateway.backport3 import listener_app, system
    from services.gateway.backport3.core import TokenCache

    monkeypatch.setenv("LUNA_METRICS_ENABLED", "0")
    main = web.Application()
    main["clients"] = main["authenticator"] = None
    main["bp3_tokens"] = TokenCache(1)
    app = listener_app(main)
    handlers = {r.resource.canonical: r.handler for r in app.router.routes() if r.method == "GET"}
    assert handlers["/metrics"] is system.metrics_disabled
    with pytest.raises(errors.LunaError) as info:
        await system.metrics_disabled(make_mocked_request("GET", "/metrics"))
    assert (info.value.code, info.value.http_status) == (12049, 403)
