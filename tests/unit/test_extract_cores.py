"""Cores behind /6/extractor, /6/liveness, /6/iso and the descriptor entities of raw matching."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from services.common import aggregation, descriptors
from services.common.errors import LunaError
from services.gateway import descriptor_entities, iso_checks


def _packed(v: list[float]) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def test_mean_unit_is_the_normalised_mean_direction() -> None:
    a, b = _packed([1.0, 0.0, 0.0]), _packed([0.0, 2.0, 0.0])  # b is not unit length
    got = np.frombuffer(descriptors.mean_unit([a, b]), dtype="<f4")
    assert np.allclose(got, [2**-0.5, 2**-0.5, 0.0], atol=1e-6)
    assert np.isclose(np.linalg.norm(got), 1.0)
    assert descriptors.mean_unit([a]) == _packed([1.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        descriptors.mean_unit([])


def test_mean_basic_attributes_averages_age_and_male_probability() -> None:
    got = aggregation.mean_basic_attributes(
        [
            {"age": 30, "gender": 1, "gender_score": 0.9},  # P(male) 0.9
            {"age": 41, "gender": 0, "gender_score": 0.7},  # P(male) 0.3
        ]
    )
    assert got["age"] == 36  # 35.5 rounds to even
    assert got["gender"] == 1 and got["gender_score"] == pytest.approx(0.6)


def test_mean_liveness_applies_the_estimators_rules_to_the_means() -> None:
    real = {"prediction": 1, "estimations": {"score": 0.9, "quality": 0.9}}
    spoof = {"prediction": 0, "estimations": {"score": 0.2, "quality": 0.8}}
    dark = {"prediction": 2, "estimations": {"score": 0.9, "quality": 0.1}}
    assert aggregation.mean_liveness([real, real])["prediction"] == 1
    assert aggregation.mean_liveness([real, spoof, spoof])["prediction"] == 0
    assert aggregation.mean_liveness([dark, dark])["prediction"] == 2
    got = aggregation.mean_liveness([real, spoof])
    assert got["estimations"]["score"] == pytest.approx(0.55)


def test_descriptor_entity_accepts_lunas_data_and_the_old_descriptor_name() -> None:
    raw = _packed([0.5, 0.5])
    b64 = base64.b64encode(raw).decode()
    ent = {"type": "sdk_descriptor", "id": "x", "data": b64}
    assert descriptor_entities.entity_bytes(ent, "p") == (raw, 0)
    ent = {"type": "raw_descriptor", "descriptor": b64, "version": 200}
    assert descriptor_entities.entity_bytes(ent, "p") == (raw, 200)


@pytest.mark.parametrize(
    ("entity", "code", "detail"),
    [
        ({"type": "raw_descriptor", "id": "x"}, 12022, "Path: 'references.0.data'"),
        ({"type": "raw_descriptor", "data": 5}, 12022, "str type expected"),
        ({"type": "raw_descriptor", "data": "!!"}, 12022, "not valid base64"),
        ({"type": "xpk_file", "data": "AAAA"}, 12035, "xpk"),
    ],
)
def test_descriptor_entity_refusals(entity: dict, code: int, detail: str) -> None:
    with pytest.raises(LunaError) as err:
        descriptor_entities.entity_bytes(entity, "references.0")
    assert err.value.code == code and detail in err.value.detail


def _facts(**kw: object) -> iso_checks.FaceFacts:
    base: dict = dict(
        image_width=600,
        image_height=800,
        image_format="JPEG",
        box=(180.0, 200.0, 330.0, 480.0),  # centre 345/600 = 0.575: off-centre
        landmarks5=[(250.0, 350.0), (350.0, 350.0), (300, 400), (260, 450), (340, 450)],
        head_pose={"yaw": 2.0, "pitch": -3.0, "roll": 9.0},
        quality={
            "darkness": 0.9,
            "light": 0.9,
            "blurriness": 0.2,
            "illumination": 0.9,
            "specularity": 0.9,
        },
    )
    base.update(kw)
    return iso_checks.FaceFacts(**base)


def test_iso_checks_measure_and_judge_each_requirement() -> None:
    checks = {c["name"]: c for c in iso_checks.checks(_facts())}
    assert checks["eye_distance"]["object_value"] == pytest.approx(100.0)
    assert checks["eye_distance"]["result"] == 1
    assert checks["eye_distance"]["threshold_value"] == {"min": 90.0, "max": None}
    assert checks["head_yaw"]["result"] == 1 and checks["head_pitch"]["result"] == 1
    assert checks["head_roll"]["result"] == 0  # 9 degrees > 8
    assert checks["head_horizontal_center"]["object_value"] == pytest.approx(0.575)
    assert checks["head_horizontal_center"]["result"] == 0
    assert checks["head_width"]["object_value"] == pytest.approx(0.55)
    assert checks["blurriness_quality"]["result"] == 0
    assert checks["image_format"]["result"] == 1
    assert iso_checks.verdict(list(checks.values())) == 0
    # No model, no check: nothing in the list is about gaze, eyes or mouth.
    assert not set(checks) & set(iso_checks.NOT_CHECKED)


def test_iso_warp_skips_source_image_checks_and_bmp_fails_the_format() -> None:
    checks = {c["name"]: c for c in iso_checks.checks(_facts(box=None, head_pose=None))}
    assert not set(checks) & set(iso_checks.SOURCE_ONLY)
    checks = {c["name"]: c for c in iso_checks.checks(_facts(image_format="BMP"))}
    assert checks["image_format"]["result"] == 0
