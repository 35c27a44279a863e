"""Estimation outputs: LUNA field names and ranges, and behaviour on real image changes."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from services.common import errors
from services.common.errors import LunaError
from services.estimator import core, estimations
from services.estimator.core import Estimator

ALL_IMAGE = {
    "face_descriptor",
    "basic_attributes",
    "head_pose",
    "landmarks5",
    "landmarks68",
    "emotions",
    "mask",
    "quality",
    "liveness",
}


def _in01(x: object) -> bool:
    return isinstance(x, float) and 0.0 <= x <= 1.0


def _check_face(est: dict[str, object], w: int, h: int) -> None:
    ba = est["basic_attributes"]
    assert set(ba) == {"age", "gender", "gender_score"}  # type: ignore[arg-type]
    assert isinstance(ba["age"], int) and 0 <= ba["age"] <= 100  # type: ignore[index]
    assert ba["gender"] in (0, 1) and 0.5 <= ba["gender_score"] <= 1.0  # type: ignore[index]
    hp = est["head_pose"]
    assert set(hp) == {"pitch", "roll", "yaw"}  # type: ignore[arg-type]
    assert all(-180.0 <= v <= 180.0 for v in hp.values())  # type: ignore[attr-defined]
    em = est["emotions"]
    assert set(em["estimations"]) == set(estimations.EMOTIONS)  # type: ignore[index]
    assert all(_in01(v) for v in em["estimations"].values())  # type: ignore[index]
    assert abs(sum(em["estimations"].values()) - 1.0) < 1e-4  # type: ignore[index]
    assert em["predominant_emotion"] == max(em["estimations"], key=em["estimations"].get)  # type: ignore[index]
    mk = est["mask"]
    assert set(mk["estimations"]) == {"medical_mask", "missing", "occluded"}  # type: ignore[index]
    assert all(_in01(v) for v in mk["estimations"].values())  # type: ignore[index]
    assert mk["estimations"]["occluded"] == 0.0  # type: ignore[index]
    assert mk["predominant_mask"] in ("medical_mask", "missing")  # type: ignore[index]
    q = est["quality"]
    assert set(q) == {"darkness", "light", "blurriness", "illumination", "specularity"}  # type: ignore[arg-type]
    assert all(_in01(v) for v in q.values())  # type: ignore[attr-defined]
    lv = est["liveness"]
    assert lv["prediction"] in (0, 1, 2)  # type: ignore[index]
    assert set(lv["estimations"]) == {"quality", "score"}  # type: ignore[index]
    assert all(_in01(v) for v in lv["estimations"].values())  # type: ignore[index]
    for key, n in (("landmarks5", 5), ("landmarks68", 68)):
        pts = np.array(est[key])
        assert pts.shape == (n, 2)
        assert (pts[:, 0] > -0.1 * w).all() and (pts[:, 0] < 1.1 * w).all()
        assert (pts[:, 1] > -0.1 * h).all() and (pts[:, 1] < 1.1 * h).all()


async def test_all_estimations_have_luna_shape(
    estimator: Estimator, astronaut: np.ndarray, load_image: Callable[[str], np.ndarray]
) -> None:
    for img in (astronaut, load_image("01.jpg"), load_image("p3.jpg")):
        res = await estimator.detect(img, estimations=ALL_IMAGE)
        for f in res.faces:
            _check_face(f.estimations, res.image_width, res.image_height)


async def test_astronaut_attributes(estimator: Estimator, astronaut: np.ndarray) -> None:
    est = (await estimator.detect(astronaut, estimations=ALL_IMAGE)).faces[0].estimations
    assert est["basic_attributes"]["gender"] == 0  # type: ignore[index]
    assert 20 <= est["basic_attributes"]["age"] <= 55  # type: ignore[index]
    assert est["emotions"]["predominant_emotion"] == "happiness"  # type: ignore[index]
    assert est["mask"]["predominant_mask"] == "missing"  # type: ignore[index]
    hp = est["head_pose"]
    assert all(abs(v) < 15 for v in hp.values())  # type: ignore[attr-defined]
    # 68 landmarks agree with the detector's 5: the eye centres (36-41, 42-47)
    lm68, lm5 = np.array(est["landmarks68"]), np.array(est["landmarks5"])
    eyes = np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0)])
    assert np.abs(eyes - lm5[:2]).max() < 8


async def test_men_are_male(estimator: Estimator, load_image: Callable[[str], np.ndarray]) -> None:
    res = await estimator.detect(
        load_image("test3.jpg"), multiface_policy=2, estimations={"basic_attributes"}
    )
    assert res.faces[0].estimations["basic_attributes"]["gender"] == 1  # type: ignore[index]


async def test_mirroring_flips_yaw_and_roll(
    estimator: Estimator, load_image: Callable[[str], np.ndarray]
) -> None:
    img = load_image("test_3ddfa.jpg")
    a = (await estimator.detect(img, estimations={"head_pose"})).faces
    m = (
        await estimator.detect(np.ascontiguousarray(img[:, ::-1]), estimations={"head_pose"})
    ).faces
    assert len(a) == len(m) == 2
    width = img.shape[1]
    for fa in a:
        cx = fa.box.x + fa.box.width / 2
        fm = min(m, key=lambda f: abs(width - (f.box.x + f.box.width / 2) - cx))
        pa, pm = fa.estimations["head_pose"], fm.estimations["head_pose"]
        assert abs(pa["yaw"]) > 10  # type: ignore[index]
        assert abs(pa["yaw"] + pm["yaw"]) < 3 and abs(pa["roll"] + pm["roll"]) < 3  # type: ignore[index]
        assert abs(pa["pitch"] - pm["pitch"]) < 3  # type: ignore[index]


async def test_quality_follows_image_measures(estimator: Estimator, astronaut: np.ndarray) -> None:
    async def q(img: np.ndarray) -> dict[str, float]:
        res = await estimator.detect(img, estimations={"quality"}, multiface_policy=2)
        return res.faces[0].estimations["quality"]  # type: ignore[return-value]

    base = await q(astronaut)
    dark = await q((astronaut.astype(np.float32) * 0.2).astype(np.uint8))
    blurred = await q(cv2.GaussianBlur(astronaut, (0, 0), 3))
    bright = await q(np.clip(astronaut.astype(np.float32) * 2.2 + 40, 0, 255).astype(np.uint8))
    assert base["darkness"] > 0.9 and base["blurriness"] > 0.9 and base["light"] > 0.9
    assert dark["darkness"] < 0.5 < base["darkness"]
    assert blurred["blurriness"] < 0.5 < base["blurriness"]
    assert bright["light"] < 0.5 < base["light"]
    side = astronaut.astype(np.float32)
    side[:, :220] *= 0.25  # light from the right only (the face spans x 178..270)
    assert (await q(side.astype(np.uint8)))["illumination"] < base["illumination"]


async def test_warped_input_estimations(estimator: Estimator, astronaut: np.ndarray) -> None:
    face = (await estimator.detect(astronaut, estimations={"basic_attributes", "mask"})).faces[0]
    (est,) = await estimator.estimate(
        [face.sample], {"basic_attributes", "mask", "emotions", "quality", "face_descriptor"}
    )
    assert est["basic_attributes"] == face.estimations["basic_attributes"]
    assert est["mask"] == face.estimations["mask"]
    assert est["face_descriptor"]["version"] == 200  # type: ignore[index]
    with pytest.raises(LunaError) as ei:
        await estimator.detect(face.sample, image_type=1, estimations={"head_pose"})
    assert ei.value.code == errors.BAD_JSON
    with pytest.raises(LunaError) as ei:
        await estimator.detect(astronaut, image_type=1)
    assert ei.value.code == errors.BAD_SAMPLE_SIZE
    with pytest.raises(LunaError) as ei:
        await estimator.extract([astronaut])
    assert ei.value.code == errors.BAD_SAMPLE_SIZE


@pytest.mark.parametrize("name", core.UNAVAILABLE)
async def test_unavailable_estimations_are_refused(
    estimator: Estimator, astronaut: np.ndarray, name: str
) -> None:
    with pytest.raises(LunaError) as ei:
        await estimator.detect(astronaut, estimations={"face_descriptor", name})
    assert ei.value.code == errors.FEATURE_DISABLED
    assert f"estimate_{name}" in ei.value.detail


async def test_unknown_estimation_and_bad_args(estimator: Estimator, astronaut: np.ndarray) -> None:
    for kwargs in ({"estimations": {"telepathy"}}, {"multiface_policy": 3}, {"image_type": 5}):
        with pytest.raises(LunaError) as ei:
            await estimator.detect(astronaut, **kwargs)  # type: ignore[arg-type]
        assert ei.value.code == errors.BAD_JSON
    with pytest.raises(LunaError) as ei:
        await estimator.detect(astronaut, image_type=2)
    assert ei.value.code == errors.FEATURE_DISABLED


async def test_bad_image_bytes(estimator: Estimator) -> None:
    with pytest.raises(LunaError) as ei:
        await estimator.detect(b"\xff\xd8\xff\xe0 truncated", content_type="image/jpeg")
    assert ei.value.code == errors.BAD_IMAGE


def test_features(estimator: Estimator) -> None:
    f = estimator.features()
    assert "liveness" in f.available and "liveness" in f.unvalidated
    assert not set(f.available) & set(f.unavailable)
    assert {"glasses", "gaze", "eyes_attributes", "deepfake", "ethnicity"} <= set(f.unavailable)
    assert f.descriptor_version == 200
