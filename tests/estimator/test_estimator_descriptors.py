"""SFace and MobileFaceNet descriptors: invariance, separation of different people, sample
round trips, descriptor versions."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from services.common import errors
from services.common.errors import LunaError
from services.estimator.core import Estimator
from services.estimator.images import decode_image, encode_image
from services.estimator.model_repo import MOBILEFACENET_DESCRIPTOR_VERSION, SFACE_MATCH_THRESHOLD


def _vec(b: bytes | None) -> np.ndarray:
    assert b is not None
    return np.frombuffer(b, dtype="<f4")


async def _one(estimator: Estimator, img: np.ndarray) -> np.ndarray:
    res = await estimator.detect(img, multiface_policy=2)
    assert len(res.faces) == 1
    return _vec(res.faces[0].descriptor)


async def test_descriptor_format(estimator: Estimator, astronaut: np.ndarray) -> None:
    f = (await estimator.detect(astronaut)).faces[0]
    v = _vec(f.descriptor)
    assert v.shape == (128,) and f.descriptor_version == 200
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


async def test_same_face_variants_match(estimator: Estimator, astronaut: np.ndarray) -> None:
    ref = await _one(estimator, astronaut)
    h, w = astronaut.shape[:2]
    variants = {
        "flipped": np.ascontiguousarray(astronaut[:, ::-1]),
        "half": cv2.resize(astronaut, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        "double": cv2.resize(astronaut, (w * 2, h * 2), interpolation=cv2.INTER_CUBIC),
        "jpeg_q30": decode_image(encode_image(astronaut, "JPEG", quality=30)),
    }
    for name, img in variants.items():
        sim = float(np.dot(ref, await _one(estimator, img)))
        assert sim >= 0.9, (name, sim)


async def test_different_people_do_not_match(
    estimator: Estimator, astronaut: np.ndarray, load_image: Callable[[str], np.ndarray]
) -> None:
    # astronaut, the two debate speakers, the eight girls of 01.jpg and the man of test3.jpg:
    # 12 different people, from 4 photos
    groups = [[await _one(estimator, astronaut)]]
    for name, policy in (("test_3ddfa.jpg", 1), ("01.jpg", 1), ("test3.jpg", 2)):
        res = await estimator.detect(load_image(name), multiface_policy=policy)
        groups.append([_vec(f.descriptor) for f in res.faces])
    assert [len(g) for g in groups] == [1, 2, 8, 1]
    for i, ga in enumerate(groups):
        for gb in groups[i + 1 :]:
            sims = np.stack(ga) @ np.stack(gb).T
            assert sims.max() < SFACE_MATCH_THRESHOLD, sims.max()
    trump, clinton = groups[1]
    assert float(np.dot(trump, clinton)) < SFACE_MATCH_THRESHOLD
    # Within 01.jpg (small faces, same age, same uniform) SFace is weaker: one impostor pair
    # reaches ~0.46 (a known false match, see services/estimator/README.md); the bulk stays low.
    girls = np.stack(groups[2])
    within = (girls @ girls.T)[np.triu_indices(len(girls), 1)]
    assert float(np.median(within)) < 0.25


async def test_sample_round_trip_gives_same_descriptor(
    estimator: Estimator, astronaut: np.ndarray
) -> None:
    face = (await estimator.detect(astronaut)).faces[0]
    ref = _vec(face.descriptor)
    # PNG sample: the warped-image path is bit-identical
    again = await estimator.detect(face.sample, image_type=1)
    np.testing.assert_allclose(_vec(again.faces[0].descriptor), ref, atol=1e-6)
    (ext,) = await estimator.extract([face.sample])
    np.testing.assert_allclose(_vec(ext.data), ref, atol=1e-6)
    # a JPEG sample (as stored by LUNA clients) stays well above the threshold
    jpeg = encode_image(decode_image(face.sample), "JPEG", quality=90)
    (ext_jpeg,) = await estimator.extract([jpeg])
    assert float(np.dot(_vec(ext_jpeg.data), ref)) > 0.97


async def test_batched_extract_equals_single(
    estimator: Estimator, load_image: Callable[[str], np.ndarray]
) -> None:
    faces = (await estimator.detect(load_image("01.jpg"))).faces
    samples = [decode_image(f.sample) for f in faces]
    batch = await estimator.extract(samples)
    for f, d in zip(faces, batch, strict=True):
        np.testing.assert_allclose(_vec(d.data), _vec(f.descriptor), atol=1e-5)


# ---------------------------------------------------------------- MobileFaceNet, version 201
MFN = MOBILEFACENET_DESCRIPTOR_VERSION


async def _one_v(estimator: Estimator, img: np.ndarray, version: int) -> np.ndarray:
    res = await estimator.detect(img, multiface_policy=2, descriptor_version=version)
    assert len(res.faces) == 1 and res.faces[0].descriptor_version == version
    return _vec(res.faces[0].descriptor)


async def test_mobilefacenet_format_and_default(
    estimator: Estimator, astronaut: np.ndarray
) -> None:
    assert estimator.descriptor_versions == (200, MFN)
    f = (await estimator.detect(astronaut, descriptor_version=MFN)).faces[0]
    v = _vec(f.descriptor)
    assert v.shape == (192,) and f.descriptor_version == MFN
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    # 0 / None is the default version (SFace)
    assert (await estimator.detect(astronaut, descriptor_version=0)).faces[
        0
    ].descriptor_version == 200


async def test_unknown_version_is_34001(estimator: Estimator, astronaut: np.ndarray) -> None:
    face = (await estimator.detect(astronaut)).faces[0]
    for call in (
        estimator.detect(astronaut, descriptor_version=57),
        estimator.extract([face.sample], 57),
        estimator.estimate([face.sample], {"face_descriptor"}, 57),
    ):
        with pytest.raises(LunaError) as err:
            await call
        assert err.value.code == errors.UNSUPPORTED_DESCRIPTOR_VERSION


async def test_mobilefacenet_same_person_scores_higher(
    estimator: Estimator, astronaut: np.ndarray, load_image: Callable[[str], np.ndarray]
) -> None:
    """Genuine pairs (the astronaut's variants, the two debate speakers in the original and in
    the annotated copy of the photo) score far above every impostor pair of 12 people."""
    ref = await _one_v(estimator, astronaut, MFN)
    h, w = astronaut.shape[:2]
    genuine = [
        float(np.dot(ref, await _one_v(estimator, img, MFN)))
        for img in (
            np.ascontiguousarray(astronaut[:, ::-1]),
            cv2.resize(astronaut, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
            decode_image(encode_image(astronaut, "JPEG", quality=30)),
        )
    ]
    pair = [
        await estimator.detect(load_image(n), descriptor_version=MFN)
        for n in ("test_3ddfa.jpg", "test_3ddfa_result.jpg")
    ]
    a = np.stack([_vec(f.descriptor) for f in pair[0].faces])
    b = np.stack([_vec(f.descriptor) for f in pair[1].faces])
    genuine += list((a @ b.T).max(axis=1))
    groups = [[ref]]
    for name, policy in (("test_3ddfa.jpg", 1), ("01.jpg", 1), ("test3.jpg", 2)):
        res = await estimator.detect(
            load_image(name), multiface_policy=policy, descriptor_version=MFN
        )
        groups.append([_vec(f.descriptor) for f in res.faces])
    people = np.stack([v for g in groups for v in g])
    assert len(people) == 12
    impostor = (people @ people.T)[np.triu_indices(len(people), 1)]
    assert min(genuine) > 0.85, genuine
    assert float(impostor.max()) < 0.65, impostor.max()
    assert min(genuine) - float(impostor.max()) > 0.2
    assert float(np.median(impostor)) < 0.35


async def test_mobilefacenet_extract_batches_and_round_trips(
    estimator: Estimator, load_image: Callable[[str], np.ndarray]
) -> None:
    faces = (await estimator.detect(load_image("01.jpg"), descriptor_version=MFN)).faces
    batch = await estimator.extract([f.sample for f in faces], MFN)
    assert {d.version for d in batch} == {MFN}
    for f, d in zip(faces, batch, strict=True):
        np.testing.assert_allclose(_vec(d.data), _vec(f.descriptor), atol=1e-5)
    (est,) = await estimator.estimate([faces[0].sample], {"face_descriptor"}, MFN)
    assert est["face_descriptor"]["version"] == MFN  # type: ignore[index]
