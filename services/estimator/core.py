"""The estimator's facade: detect, extract, estimate; no network, no protobuf.

Estimation names are LUNA's query parameter names without the `estimate_` prefix
(`face_descriptor`, `basic_attributes`, `head_pose`, `landmarks68`, ...).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np

from services.common import errors
from services.common.errors import LunaError
from services.estimator import align, detect, estimations, images
from services.estimator import model_repo as mr
from services.estimator.backends import InferenceBackend, make_backend
from services.estimator.budget import PixelBudget, run_sized
from services.estimator.extract import (
    Descriptor,
    check_version,
    descriptor_input,
    extract_descriptors,
    installed_versions,
)
from services.estimator.results import BodyResult, Box, DetectResult, FaceResult, Features

AVAILABLE = (
    "face_descriptor",
    "basic_attributes",
    "head_pose",
    "landmarks5",
    "landmarks68",
    "emotions",
    "mask",
    "quality",
    "face_warp",
    "liveness",
)
UNVALIDATED = ("liveness",)
UNAVAILABLE = (
    "glasses",
    "gaze",
    "eyes_attributes",
    "mouth_attributes",
    "deepfake",
    "people_count",
    "face_quality",
    "ethnicity",
    "body_descriptor",
    "body_basic_attributes",
    "upper_body",
    "lower_body",
    "accessories",
    "body_warp",
)
# LUNA: "not with warps" - they need the source image around the face.
SOURCE_IMAGE_ONLY = ("head_pose", "landmarks5", "landmarks68", "liveness")
IMAGE_RAW, IMAGE_FACE_WARP, IMAGE_BODY_WARP = 0, 1, 2


def _box(b: tuple[float, float, float, float]) -> Box:
    return Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def _check_estimations(requested: set[str], image_type: int) -> None:
    unknown = requested - set(AVAILABLE) - set(UNAVAILABLE)
    if unknown:
        raise LunaError(errors.BAD_JSON, f"Unknown estimations: {', '.join(sorted(unknown))}")
    missing = requested & set(UNAVAILABLE)
    if missing:
        names = ", ".join(f"estimate_{n}" for n in sorted(missing))
        raise LunaError(
            errors.FEATURE_DISABLED,
            f"Forbidden. {names} turned off: no model for it is installed on this platform",
        )
    if image_type != IMAGE_RAW:
        bad = requested & set(SOURCE_IMAGE_ONLY)
        if bad:
            names = ", ".join(f"estimate_{n}" for n in sorted(bad))
            raise LunaError(errors.BAD_JSON, f"{names} cannot be estimated on warped images")


class Estimator:
    """Detection, alignment, descriptors and attributes over one inference backend."""

    def __init__(
        self,
        backend: InferenceBackend | None = None,
        repo_dir: Path | None = None,
        *,
        detector: str | None = None,
        sample_format: str = "jpeg",
        inflight_pixels: int = images.DEFAULT_INFLIGHT_PIXELS,
        limits: images.ImageLimits = images.DEFAULT_LIMITS,
    ) -> None:
        """`detector`, `inflight_pixels` and `limits` come from the app's settings (the core
        does not read the environment); left out, they are the settings' defaults."""
        self.repo_dir = (repo_dir or mr.models_dir()).resolve()
        manifest = mr.load_manifest(self.repo_dir)
        if manifest is None:
            raise FileNotFoundError(
                f"no model repository at {self.repo_dir}; run `luna models install`"
            )
        self.backend = backend or make_backend(repo_dir=self.repo_dir)
        self.detector = detector or detect.DEFAULT_DETECTOR
        self.sample_format = sample_format
        self.age_weights = np.asarray(manifest["age_weights"], dtype=np.float32)
        self.tddfa = estimations.TddfaAux.load(self.repo_dir / mr.TDDFA_AUX)
        self.descriptor_version = int(
            manifest.get("descriptor_version", mr.SFACE_DESCRIPTOR_VERSION)
        )  # type: ignore[call-overload]
        self.descriptor_versions = installed_versions(manifest)
        self.budget = PixelBudget(inflight_pixels)
        self.limits = limits

    async def close(self) -> None:
        await self.backend.close()

    def features(self) -> Features:
        return Features(
            available=AVAILABLE,
            unvalidated=UNVALIDATED,
            unavailable=UNAVAILABLE,
            descriptor_version=self.descriptor_version,
            detector=self.detector,
            descriptor_versions=self.descriptor_versions,
        )

    def _version(self, version: int | None) -> int:
        """The request's descriptor version (None or 0: the default), refused with 34001 when
        no installed model extracts it."""
        return check_version(version or self.descriptor_version, self.descriptor_versions)

    # ------------------------------------------------------------------ detect
    async def detect(
        self,
        image: bytes | np.ndarray,
        *,
        content_type: str | None = None,
        multiface_policy: int = 1,
        detect_face: bool = True,
        detect_body: bool = False,
        estimations: set[str] | frozenset[str] = frozenset({"face_descriptor"}),
        image_type: int = IMAGE_RAW,
        use_exif: bool = True,
        descriptor_version: int | None = None,
    ) -> DetectResult:
        """Faces (and bodies) of one image with the requested estimations.

        multiface_policy: 0 = an image with several faces is an error (11038), 1 = all faces,
        2 = only the best face (highest detection score x sqrt(area)).
        """
        requested = set(estimations)
        _check_estimations(requested, image_type)
        version = self._version(descriptor_version)
        if multiface_policy not in (0, 1, 2):
            raise LunaError(
                errors.BAD_JSON, f"multiface_policy must be 0, 1 or 2, not {multiface_policy}"
            )
        if image_type == IMAGE_BODY_WARP:
            raise LunaError(
                errors.FEATURE_DISABLED, "Forbidden. Body warps are not supported: no body model"
            )
        if image_type not in (IMAGE_RAW, IMAGE_FACE_WARP):
            raise LunaError(errors.BAD_JSON, f"image_type must be 0, 1 or 2, not {image_type}")
        if isinstance(image, np.ndarray):
            pixels = int(image.shape[0]) * int(image.shape[1]) if image.ndim >= 2 else 0
        else:
            pixels = images.image_pixels(bytes(image), content_type)
        # Decoded only once its pixels fit in the estimator's budget, off the event loop, and
        # held only until this image's results are built.
        async with self.budget.hold(pixels):
            return await self._detect(
                image, content_type, multiface_policy, detect_face, detect_body, requested,
                image_type, use_exif, version,
            )  # fmt: skip

    async def _detect(
        self,
        image: bytes | np.ndarray,
        content_type: str | None,
        multiface_policy: int,
        detect_face: bool,
        detect_body: bool,
        requested: set[str],
        image_type: int,
        use_exif: bool,
        version: int,
    ) -> DetectResult:
        raw = image_type == IMAGE_RAW
        rgb, prepared = await self._load(image, content_type, use_exif and raw, detect_face and raw)
        h, w = rgb.shape[:2]
        dets = await self._faces(rgb, image_type, detect_face, multiface_policy, prepared)
        # Warps, their encoded samples and the descriptor model's input: one hop to a worker
        # thread, not a stall of the event loop (8 faces of a 1 MP photo take ~10 ms).
        want_desc = "face_descriptor" in requested
        warps, samples, desc_input = await run_sized(
            h * w if raw else 0, self._warps, rgb, image_type, dets, want_desc, version
        )

        bodies: list[BodyResult] = []
        if detect_body and raw:
            bodies = [
                BodyResult(_box(b.box), b.score, [tuple(map(float, k)) for k in b.keypoints])  # type: ignore[misc]
                for b in await detect.detect_bodies(self.backend, rgb)
            ]

        per_face = await self._estimate(
            rgb if raw else None, dets, warps, requested, version, desc_input
        )
        faces = []
        for d, sample, (desc, est) in zip(dets, samples, per_face, strict=True):
            faces.append(
                FaceResult(
                    box=_box(d.box),
                    score=d.score,
                    landmarks5=[(float(x), float(y)) for x, y in d.landmarks5],
                    sample=sample,
                    sample_format=self.sample_format,
                    descriptor=desc.data if desc else None,
                    descriptor_version=desc.version if desc else None,
                    estimations=est,
                )
            )
        self._associate(faces, bodies)
        if multiface_policy in (0, 2):
            bodies = [f.body for f in faces if f.body is not None]
        return DetectResult(w, h, faces, bodies)

    async def _load(
        self, image: bytes | np.ndarray, content_type: str | None, use_exif: bool, prepare: bool
    ) -> tuple[np.ndarray, tuple[np.ndarray, float] | None]:
        """RGB pixels of a request image (bytes are decoded once their size fits the budget)
        and, when `prepare`, the face detector's input: both in one worker thread, never on
        the event loop."""
        if isinstance(image, np.ndarray):
            pixels = int(image.shape[0]) * int(image.shape[1]) if image.ndim >= 2 else 0
        else:
            pixels = images.image_pixels(image, content_type)
        return await run_sized(pixels, self._load_sync, image, content_type, use_exif, prepare)

    def _load_sync(
        self, image: bytes | np.ndarray, content_type: str | None, use_exif: bool, prepare: bool
    ) -> tuple[np.ndarray, tuple[np.ndarray, float] | None]:
        rgb = images.as_rgb_array(image, content_type, use_exif=use_exif, limits=self.limits)
        return rgb, detect.detector_input(rgb, self.detector) if prepare else None

    async def _faces(
        self,
        rgb: np.ndarray,
        image_type: int,
        detect_face: bool,
        multiface_policy: int,
        prepared: tuple[np.ndarray, float] | None = None,
    ) -> list[detect.Detection]:
        """The faces to report: a warped image is its own face; in a raw image they are
        detected, then kept as `multiface_policy` says."""
        h, w = rgb.shape[:2]
        if image_type == IMAGE_FACE_WARP:
            if (h, w) != (align.WARP_SIZE, align.WARP_SIZE):
                raise LunaError(errors.BAD_SAMPLE_SIZE, f"Image size is {w}x{h}, not 250x250")
            return [
                detect.Detection((0.0, 0.0, float(w), float(h)), 1.0, align.WARP_TEMPLATE.copy())
            ]
        dets = (
            await detect.detect_faces(self.backend, rgb, self.detector, prepared)
            if detect_face
            else []
        )
        dets = [d for d in dets if d.box[2] >= 1 and d.box[3] >= 1]
        if multiface_policy == 0 and len(dets) > 1:
            raise LunaError(
                errors.MULTIPLE_FACES, f"Multiple faces found in image: {len(dets)} detected"
            )
        if multiface_policy == 2 and len(dets) > 1:
            dets = [max(dets, key=lambda d: d.score * math.sqrt(d.box[2] * d.box[3]))]
        return dets

    def _warps(
        self,
        rgb: np.ndarray,
        image_type: int,
        dets: list[detect.Detection],
        want_descriptor: bool,
        version: int,
    ) -> tuple[list[np.ndarray], list[bytes], np.ndarray | None]:
        """The 250x250 samples of the faces (a warped image is its own), encoded, and the
        descriptor model's input (None when no descriptor is wanted)."""
        if image_type == IMAGE_FACE_WARP:
            warps = [rgb for _ in dets]
        else:
            warps = [align.warp_face(rgb, d.landmarks5) for d in dets]
        samples = [images.encode_image(w, self.sample_format) for w in warps]
        desc_input = descriptor_input(warps, version) if want_descriptor and warps else None
        return warps, samples, desc_input

    @staticmethod
    def _associate(faces: list[FaceResult], bodies: list[BodyResult]) -> None:
        """A face belongs to the body whose box holds the face centre in its upper half."""
        for f in faces:
            cx, cy = f.box.x + f.box.width / 2, f.box.y + f.box.height / 2
            best, best_area = None, math.inf
            for b in bodies:
                inside = (
                    b.box.x <= cx <= b.box.x + b.box.width
                    and b.box.y <= cy <= b.box.y + b.box.height / 2
                )
                area = b.box.width * b.box.height
                if inside and area < best_area:
                    best, best_area = b, area
            f.body = best

    async def _estimate(
        self,
        rgb: np.ndarray | None,
        dets: list[detect.Detection],
        warps: list[np.ndarray],
        requested: set[str],
        version: int,
        desc_input: np.ndarray | None = None,
    ) -> list[tuple[Descriptor | None, dict[str, object]]]:
        if not dets:
            return []
        boxes = [d.box for d in dets]
        jobs: dict[str, asyncio.Future[list[object]] | asyncio.Task[list[object]]] = {}
        if "face_descriptor" in requested:
            jobs["face_descriptor"] = asyncio.ensure_future(
                extract_descriptors(self.backend, warps, version, prepared=desc_input)
            )
        if "basic_attributes" in requested:
            jobs["basic_attributes"] = asyncio.ensure_future(
                estimations.basic_attributes(self.backend, self.age_weights, warps)
            )
        if "emotions" in requested:
            jobs["emotions"] = asyncio.ensure_future(estimations.emotions(self.backend, warps))
        if "mask" in requested:
            jobs["mask"] = asyncio.ensure_future(estimations.masks(self.backend, warps))
        if rgb is not None and requested & {"head_pose", "landmarks68"}:
            jobs["tddfa"] = asyncio.ensure_future(
                estimations.head_pose_landmarks68(self.backend, self.tddfa, rgb, boxes)
            )
        qualities = (
            [estimations.quality(w) for w in warps] if requested & {"quality", "liveness"} else []
        )
        if rgb is not None and "liveness" in requested:
            jobs["liveness"] = asyncio.ensure_future(
                estimations.liveness(self.backend, rgb, boxes, qualities)
            )
        done = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))

        out: list[tuple[Descriptor | None, dict[str, object]]] = []
        for i, d in enumerate(dets):
            est: dict[str, object] = {}
            for key in ("basic_attributes", "emotions", "mask", "liveness"):
                if key in done:
                    est[key] = done[key][i]
            if "tddfa" in done:
                pose, lm68 = done["tddfa"][i]  # type: ignore[misc]
                if "head_pose" in requested:
                    est["head_pose"] = pose
                if "landmarks68" in requested:
                    est["landmarks68"] = lm68
            if "landmarks5" in requested:
                est["landmarks5"] = [[float(x), float(y)] for x, y in d.landmarks5]
            if "quality" in requested:
                est["quality"] = qualities[i]
            desc = done["face_descriptor"][i] if "face_descriptor" in done else None
            out.append((desc, est))  # type: ignore[arg-type]
        return out

    # ------------------------------------------------------------------ samples
    def _as_sample(self, sample: bytes | np.ndarray, content_type: str | None = None) -> np.ndarray:
        if not isinstance(sample, np.ndarray):
            # Refused from the header: a "sample" of 40 megapixels is never decoded.
            images.check_sample_header(bytes(sample), content_type)
        rgb = images.as_rgb_array(sample, content_type, use_exif=False, limits=self.limits)
        if rgb.shape[:2] != (align.WARP_SIZE, align.WARP_SIZE):
            raise LunaError(
                errors.BAD_SAMPLE_SIZE, f"Image size is {rgb.shape[1]}x{rgb.shape[0]}, not 250x250"
            )
        return rgb

    async def extract(
        self, samples: list[np.ndarray | bytes], version: int | None = None
    ) -> list[Descriptor]:
        """Descriptors of 250x250 samples (arrays, or encoded images), one batched call;
        `version` None or 0 is the default version."""
        version = self._version(version)
        warps = [self._as_sample(s) for s in samples]
        return await extract_descriptors(self.backend, warps, version)

    async def estimate(
        self,
        samples: list[np.ndarray | bytes],
        estimations_: set[str],
        version: int | None = None,
    ) -> list[dict[str, object]]:
        """Warp-space estimations (and descriptors) of 250x250 samples."""
        _check_estimations(set(estimations_), IMAGE_FACE_WARP)
        version = self._version(version)
        warps = [self._as_sample(s) for s in samples]
        dets = [
            detect.Detection((0.0, 0.0, 250.0, 250.0), 1.0, align.WARP_TEMPLATE.copy())
            for _ in warps
        ]
        per = await self._estimate(None, dets, warps, set(estimations_), version)
        res = []
        for desc, est in per:
            if desc is not None:
                est = {**est, "face_descriptor": {"descriptor": desc.data, "version": desc.version}}
            res.append(est)
        return res
