"""Face alignment: the 250x250 LUNA-style sample and every crop derived from it.

Everything a face model sees is cut from the 250x250 sample (never from the source image), so a
sample sent back later with image_type=1 goes down exactly the same path and yields the same
descriptor and attributes. In sample space the 5 landmarks sit on `WARP_TEMPLATE` by
construction, so the derived crops are fixed affine maps.
"""

from __future__ import annotations

import cv2
import numpy as np

WARP_SIZE = 250

# ArcFace / InsightFace 5-point template for 112x112 crops: image-left eye, image-right eye,
# nose tip, image-left mouth corner, image-right mouth corner (YuNet's landmark order too).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
# The ArcFace 112 square occupies [45, 205) of the sample: the sample is that crop with a 45 px
# (28 %) margin, enough to hold the whole head for the attribute models.
ARC_IN_WARP = 160
ARC_OFFSET = (WARP_SIZE - ARC_IN_WARP) // 2
WARP_TEMPLATE = ARCFACE_112 * (ARC_IN_WARP / 112.0) + ARC_OFFSET

# dlib's 68-point mean face (get_face_chip_details), reduced to YuNet's 5 points: eye centres
# are the means of the 6 eye contour points; nose tip is point 30; mouth corners 48 and 54.
DLIB_MEAN_5 = np.array(
    [
        [0.225490, 0.215990],
        [0.754761, 0.215990],
        [0.490127, 0.515625],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ],
    dtype=np.float64,
)
DLIB_CHIP_PADDING = 0.2

# A detector-like "tight" face box in sample coordinates (x0, y0, x1, y1): YuNet boxes mapped
# into sample space, median over the 20 faces of the package test photos and astronaut. The mask
# and emotion models were trained on detector boxes, and a warped input has no box of its own.
FACE_BOX_IN_WARP = (68.0, 59.0, 176.0, 220.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping src points to dst points; 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    var_s = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - scale * r @ mu_s
    return m


def _scale_of(m: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def warp_affine(img: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """warpAffine that does not alias when shrinking: pre-shrink with INTER_AREA first."""
    s = _scale_of(m)
    if s < 0.7:
        h, w = img.shape[:2]
        # Shrink to ~1.3x the final scale; INTER_AREA averages the pixels that bilinear skips.
        f = min(1.0, s * 1.3)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / w, nh / h
        m = m.copy()
        m[:, 0] /= fx
        m[:, 1] /= fy
        img = small
    return cv2.warpAffine(
        img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def warp_matrix(landmarks5: np.ndarray) -> np.ndarray:
    return similarity_transform(np.asarray(landmarks5, dtype=np.float64), WARP_TEMPLATE)


def crop_region(
    img: np.ndarray, x0: float, y0: float, x1: float, y1: float, size: tuple[int, int]
) -> np.ndarray:
    """Resample the box (x0, y0, x1, y1) of img into `size` (w, h), zero-padded outside."""
    w, h = size
    m = np.array(
        [[w / (x1 - x0), 0.0, -x0 * w / (x1 - x0)], [0.0, h / (y1 - y0), -y0 * h / (y1 - y0)]]
    )
    return warp_affine(img, m, (w, h))


def warp_face(rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    """The 250x250 RGB sample for one face."""
    return warp_affine(rgb, warp_matrix(landmarks5), (WARP_SIZE, WARP_SIZE))


def arcface_crop(warp: np.ndarray) -> np.ndarray:
    """112x112 ArcFace-template crop for SFace, cut from the sample."""
    a, b = ARC_OFFSET, ARC_OFFSET + ARC_IN_WARP
    return cv2.resize(warp[a:b, a:b], (112, 112), interpolation=cv2.INTER_AREA)


def _dlib_chip_matrix(size: int) -> np.ndarray:
    p = DLIB_CHIP_PADDING
    dst = (DLIB_MEAN_5 + p) / (1 + 2 * p) * size
    return similarity_transform(WARP_TEMPLATE, dst)


_CHIP_MATRICES = {s: _dlib_chip_matrix(s) for s in (32, 64)}


def dlib_chip(warp: np.ndarray, size: int) -> np.ndarray:
    """dlib-style 5-point face chip (padding 0.2), as the age/gender nets were trained on."""
    m = _CHIP_MATRICES.get(size)
    if m is None:
        m = _dlib_chip_matrix(size)
    return warp_affine(warp, m, (size, size))


def face_box_crop(warp: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    x0, y0, x1, y1 = FACE_BOX_IN_WARP
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return crop_region(warp, x0 - mx, y0 - my, x1 + mx, y1 + my, (size, size))
