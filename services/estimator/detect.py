"""Face and body detection: pre/post-processing around the detector models.

YuNet is the default face detector: on the package photos it finds the small and masked
background faces that RetinaFace-MobileNet0.25 misses at the same input size, and it is ~3x
cheaper per 640x640 frame on CPU. RetinaFace stays available (LUNA_ESTIMATOR_DETECTOR) because
it takes any input size and a batch dim, which helps on a GPU Triton with many small frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

from services.estimator.backends import InferenceBackend
from services.estimator.budget import run_sized

_T = TypeVar("_T")
YUNET_SIZE = 640
YUNET_SCORE = 0.75
RETINA_SCORE = 0.8
NMS_IOU = 0.3
MOVENET_SIZE = 256
BODY_SCORE = 0.3


DEFAULT_DETECTOR = "yunet"  # LUNA_ESTIMATOR_DETECTOR's default


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x, y, width, height in source pixels
    score: float
    landmarks5: np.ndarray  # (5, 2) float: image-left eye, image-right eye, nose, mouth L, R


@dataclass(frozen=True)
class BodyDetection:
    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray  # (17, 3): x, y, score in source pixels (COCO order)


def _scaled(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The image with its longer side scaled to `size`, and the scale."""
    h, w = img.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, (nw, nh), interpolation=interp), scale


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Scale the longer side to `size` and pad bottom/right with zeros; returns (canvas, scale)."""
    resized, scale = _scaled(img, size)
    canvas = np.zeros((size, size, 3), dtype=img.dtype)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas, scale


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS on (x, y, w, h) boxes; indices best first."""
    order = np.argsort(-scores)
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    area = np.maximum(boxes[:, 2], 0) * np.maximum(boxes[:, 3], 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        ov = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[ov <= iou]
    return keep


def _clip_box(box: np.ndarray, w: int, h: int) -> tuple[float, float, float, float]:
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1 = min(float(w), float(box[0] + box[2]))
    y1 = min(float(h), float(box[1] + box[3]))
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def yunet_input(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The letterboxed image as YuNet's (1, 3, 640, 640) float32 BGR 0..255 blob (OpenCV's
    blobFromImage without scaling or swapRB). Each channel is written once, straight into
    the blob: no padded uint8 canvas, no transposed copy."""
    resized, scale = _scaled(rgb, YUNET_SIZE)
    nh, nw = resized.shape[:2]
    blob = np.zeros((1, 3, YUNET_SIZE, YUNET_SIZE), np.float32)
    for c in range(3):
        blob[0, c, :nh, :nw] = resized[:, :, 2 - c]
    return blob, scale


def yunet_decode(
    out: dict[str, np.ndarray], scale: float, w: int, h: int, score_thr: float = YUNET_SCORE
) -> list[Detection]:
    boxes, scores, kps = [], [], []
    for stride in (8, 16, 32):
        cols = rows = YUNET_SIZE // stride
        cls = np.clip(out[f"cls_{stride}"].reshape(-1), 0, 1)
        obj = np.clip(out[f"obj_{stride}"].reshape(-1), 0, 1)
        score = np.sqrt(cls * obj)
        sel = np.nonzero(score >= score_thr)[0]
        if sel.size == 0:
            continue
        bb = out[f"bbox_{stride}"].reshape(-1, 4)[sel]
        kp = out[f"kps_{stride}"].reshape(-1, 10)[sel]
        c = (sel % cols).astype(np.float32)
        r = (sel // cols).astype(np.float32)
        del rows
        cx = (c + bb[:, 0]) * stride
        cy = (r + bb[:, 1]) * stride
        bw = np.exp(bb[:, 2]) * stride
        bh = np.exp(bb[:, 3]) * stride
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], 1))
        pts = kp.reshape(-1, 5, 2).copy()
        pts[:, :, 0] = (pts[:, :, 0] + c[:, None]) * stride
        pts[:, :, 1] = (pts[:, :, 1] + r[:, None]) * stride
        kps.append(pts)
        scores.append(score[sel])
    if not boxes:
        return []
    b = np.concatenate(boxes) / scale
    s = np.concatenate(scores)
    k = np.concatenate(kps) / scale
    return [Detection(_clip_box(b[i], w, h), float(s[i]), k[i]) for i in nms(b, s, NMS_IOU)]


# Above this many pixels, scaling the image down to the detector's input runs in a thread:
# on the event loop it would stall every other request for a large image's whole resize.
THREAD_PREP_PIXELS = 1_000_000


async def _prepared(prep: Callable[..., _T], rgb: np.ndarray, *args: object) -> _T:
    pixels = rgb.shape[0] * rgb.shape[1]
    if pixels > THREAD_PREP_PIXELS:
        return await run_sized(pixels, prep, rgb, *args)
    return prep(rgb, *args)


_RETINA_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)  # BGR
_RETINA_STEPS = (8, 16, 32)
_RETINA_SIZES = ((16, 32), (64, 128), (256, 512))


def _retina_priors(width: int, height: int) -> np.ndarray:
    priors = []
    for step, sizes in zip(_RETINA_STEPS, _RETINA_SIZES, strict=True):
        nx, ny = math.ceil(width / step), math.ceil(height / step)
        xx, yy = np.meshgrid(np.arange(nx), np.arange(ny))
        cxcy = np.stack([(xx.ravel() + 0.5) * step / width, (yy.ravel() + 0.5) * step / height], 1)
        for_cell = [
            np.concatenate([cxcy, np.tile([[sz / width, sz / height]], (len(cxcy), 1))], 1)
            for sz in sizes
        ]
        # priors are ordered cell-major, both sizes per cell
        priors.append(np.stack(for_cell, 1).reshape(-1, 4))
    return np.concatenate(priors).astype(np.float32)


def retina_input(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    canvas, scale = letterbox(rgb, YUNET_SIZE)
    bgr = canvas[:, :, ::-1].astype(np.float32) - _RETINA_MEAN
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None]), scale


def retina_decode(
    out: dict[str, np.ndarray], scale: float, w: int, h: int, score_thr: float = RETINA_SCORE
) -> list[Detection]:
    size = YUNET_SIZE
    priors = _retina_priors(size, size)
    loc, conf, lms = out["loc"][0], out["conf"][0], out["landmarks"][0]
    scores = conf[:, 1]
    sel = np.nonzero(scores >= score_thr)[0]
    if sel.size == 0:
        return []
    p, lc, lm = priors[sel], loc[sel], lms[sel]
    cxcy = p[:, :2] + lc[:, :2] * 0.1 * p[:, 2:]
    wh = p[:, 2:] * np.exp(lc[:, 2:] * 0.2)
    boxes = np.concatenate([cxcy - wh / 2, wh], 1) * size / scale
    pts = (p[:, None, :2] + lm.reshape(-1, 5, 2) * 0.1 * p[:, None, 2:]) * size / scale
    s = scores[sel]
    return [Detection(_clip_box(boxes[i], w, h), float(s[i]), pts[i]) for i in nms(boxes, s, 0.4)]


@dataclass(frozen=True)
class FaceDetector:
    """A face detector model: its input blob and scale from an RGB image, its outputs decoded
    into detections in the image's pixels."""

    model: str
    prepare: Callable[[np.ndarray], tuple[np.ndarray, float]]
    decode: Callable[[dict[str, np.ndarray], float, int, int], list[Detection]]


FACE_DETECTORS = {
    "yunet": FaceDetector("yunet", yunet_input, yunet_decode),
    "retinaface": FaceDetector("retinaface", retina_input, retina_decode),
}


def face_detector(detector: str | None = None) -> FaceDetector:
    return FACE_DETECTORS.get(detector or DEFAULT_DETECTOR, FACE_DETECTORS[DEFAULT_DETECTOR])


def detector_input(rgb: np.ndarray, detector: str | None = None) -> tuple[np.ndarray, float]:
    """The face detector's input blob and scale, for `detect_faces(prepared=...)`: lets the
    caller build it in the same worker thread that decoded the image."""
    return face_detector(detector).prepare(rgb)


async def detect_faces(
    backend: InferenceBackend,
    rgb: np.ndarray,
    detector: str | None = None,
    prepared: tuple[np.ndarray, float] | None = None,
) -> list[Detection]:
    model = face_detector(detector)
    blob, scale = prepared or await _prepared(model.prepare, rgb)
    out = await backend.infer(model.model, {"input": blob})
    return model.decode(out, scale, rgb.shape[1], rgb.shape[0])


async def detect_bodies(
    backend: InferenceBackend, rgb: np.ndarray, score_thr: float = BODY_SCORE
) -> list[BodyDetection]:
    canvas, scale = await _prepared(letterbox, rgb, MOVENET_SIZE)
    out = await backend.infer("movenet", {"input": canvas[None].astype(np.int32)})
    raw = out["output_0"][0]  # (6, 56)
    h, w = rgb.shape[:2]
    found = []
    for det in raw:
        score = float(det[55])
        if score < score_thr:
            continue
        kp = det[:51].reshape(17, 3)
        pts = np.stack(
            [kp[:, 1] * MOVENET_SIZE / scale, kp[:, 0] * MOVENET_SIZE / scale, kp[:, 2]], 1
        )
        ymin, xmin, ymax, xmax = (det[51:55] * MOVENET_SIZE / scale).tolist()
        box = _clip_box(np.array([xmin, ymin, xmax - xmin, ymax - ymin]), w, h)
        if box[2] > 1 and box[3] > 1:
            found.append(BodyDetection(box, score, pts))
    if not found:
        return []
    b = np.array([f.box for f in found])
    s = np.array([f.score for f in found])
    return [found[i] for i in nms(b, s, 0.5)]


# Read by `luna config` to list these lazily read settings.
