"""Face and body detection on real photos."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from services.common import errors
from services.common.errors import LunaError
from services.estimator import detect
from services.estimator.core import Estimator


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


async def test_astronaut_has_one_face_with_plausible_geometry(
    estimator: Estimator, astronaut: np.ndarray
) -> None:
    res = await estimator.detect(astronaut, estimations={"landmarks5"})
    assert (res.image_width, res.image_height) == (512, 512)
    assert len(res.faces) == 1
    f = res.faces[0]
    assert f.score >= detect.YUNET_SCORE
    # her face spans roughly x 175..270, y 60..175 in the 512x512 image
    assert 160 < f.box.x < 200 and 40 < f.box.y < 90
    assert 70 < f.box.width < 120 and 90 < f.box.height < 140
    lm = np.array(f.landmarks5)
    inside = (lm[:, 0] > f.box.x) & (lm[:, 0] < f.box.x + f.box.width)
    inside &= (lm[:, 1] > f.box.y) & (lm[:, 1] < f.box.y + f.box.height)
    assert inside.all()
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left first
    assert lm[0, 1] < lm[2, 1] < lm[3, 1]  # eyes above nose above mouth
    assert f.sample_format == "png" and f.sample.startswith(b"\x89PNG")


async def test_group_photo_face_count(
    estimator: Estimator, load_image: Callable[[str], np.ndarray]
) -> None:
    # 01.jpg: ten girls, two of them hidden behind others / cut by the frame; 8 faces visible
    res = await estimator.detect(load_image("01.jpg"), estimations=set())
    assert len(res.faces) == 8
    boxes = [(f.box.x, f.box.y, f.box.width, f.box.height) for f in res.faces]
    assert max(_iou(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]) < 0.3


async def test_masked_photo_faces(
    estimator: Estimator, load_image: Callable[[str], np.ndarray]
) -> None:
    res = await estimator.detect(load_image("p3.jpg"), estimations={"mask"})
    assert len(res.faces) == 3
    for f in res.faces:
        mask = f.estimations["mask"]
        assert mask["predominant_mask"] == "medical_mask"  # type: ignore[index]


async def test_retinaface_agrees_with_yunet(
    estimator: Estimator, astronaut: np.ndarray, load_image: Callable[[str], np.ndarray]
) -> None:
    for img in (astronaut, load_image("p3.jpg"), load_image("test_3ddfa.jpg")):
        y = await detect.detect_faces(estimator.backend, img, "yunet")
        r = await detect.detect_faces(estimator.backend, img, "retinaface")
        assert len(y) == len(r)
        for a in y:
            assert max(_iou(a.box, b.box) for b in r) > 0.6


async def test_multiface_policies(
    estimator: Estimator, load_image: Callable[[str], np.ndarray]
) -> None:
    img = load_image("p3.jpg")
    with pytest.raises(LunaError) as ei:
        await estimator.detect(img, multiface_policy=0, estimations=set())
    assert ei.value.code == errors.MULTIPLE_FACES
    all_faces = (await estimator.detect(img, multiface_policy=1, estimations=set())).faces
    best = (await estimator.detect(img, multiface_policy=2, estimations=set())).faces
    assert len(best) == 1
    biggest = max(all_faces, key=lambda f: f.score * (f.box.width * f.box.height) ** 0.5)
    assert best[0].box == biggest.box


async def test_single_face_policy_zero_is_fine(estimator: Estimator, astronaut: np.ndarray) -> None:
    res = await estimator.detect(astronaut, multiface_policy=0, estimations=set())
    assert len(res.faces) == 1


async def test_no_face_and_no_detection(estimator: Estimator) -> None:
    flat = np.full((300, 400, 3), 128, np.uint8)
    assert (await estimator.detect(flat)).faces == []
    res = await estimator.detect(flat, detect_face=False)
    assert res.faces == [] and res.bodies == []


async def test_bodies_are_found_and_linked_to_faces(
    estimator: Estimator, load_image: Callable[[str], np.ndarray]
) -> None:
    res = await estimator.detect(load_image("test_3ddfa.jpg"), detect_body=True, estimations=set())
    assert len(res.faces) == 2 and len(res.bodies) == 2
    for f in res.faces:
        assert f.body is not None
        assert len(f.body.keypoints) == 17
        b = f.body.box
        assert b.x <= f.box.x + f.box.width / 2 <= b.x + b.width
    assert res.faces[0].body is not res.faces[1].body
