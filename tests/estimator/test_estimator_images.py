"""Image decoding: formats, base64 variants, EXIF orientation, limits and errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from services.common import errors
from services.common.errors import LunaError
from services.estimator import images, settings
from services.estimator.images import decode_image


def _encode(arr: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def small(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[100:164, 150:230])


@pytest.mark.parametrize(
    ("fmt", "ctype"),
    [
        ("PNG", "image/png"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("PPM", "image/x-portable-pixmap"),
    ],
)
def test_lossless_formats_and_base64(small: np.ndarray, fmt: str, ctype: str) -> None:
    raw = _encode(small, fmt)
    np.testing.assert_array_equal(decode_image(raw, ctype), small)
    np.testing.assert_array_equal(decode_image(raw), small)  # sniffed
    b64 = base64.b64encode(raw)
    b64_type = {v: k for k, v in images.BASE64_MIME.items()}[ctype]
    np.testing.assert_array_equal(decode_image(b64, b64_type), small)


def test_jpeg_and_jpeg_base64(small: np.ndarray) -> None:
    raw = _encode(small, "JPEG", quality=95)
    a = decode_image(raw, "image/jpeg")
    assert a.shape == small.shape and np.abs(a.astype(int) - small).mean() < 4
    np.testing.assert_array_equal(decode_image(base64.b64encode(raw), "image/x-jpeg-base64"), a)


def test_exif_orientation_is_honoured(small: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    raw = _encode(small, "JPEG", quality=95, exif=exif.tobytes())
    h, w = small.shape[:2]
    assert decode_image(raw).shape[:2] == (w, h)
    assert decode_image(raw, use_exif=False).shape[:2] == (h, w)


def test_gray_and_rgba_become_rgb(small: np.ndarray) -> None:
    gray = _encode(small[:, :, 0], "PNG")
    assert decode_image(gray).shape == small.shape
    rgba = np.dstack([small, np.full(small.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(decode_image(_encode(rgba, "PNG")), small)


def _code(fn: object, *args: object, **kw: object) -> int:
    with pytest.raises(LunaError) as ei:
        fn(*args, **kw)  # type: ignore[operator]
    return ei.value.code


def test_bad_images_raise_documented_codes(small: np.ndarray) -> None:
    jpeg = _encode(small, "JPEG")
    assert _code(decode_image, b"") == errors.BAD_IMAGE
    assert _code(decode_image, jpeg[: len(jpeg) // 2]) == errors.BAD_IMAGE  # truncated
    assert _code(decode_image, b"this is not an image at all") == errors.BAD_IMAGE
    assert _code(decode_image, b"%%%%", "image/x-png-base64") == errors.BAD_IMAGE
    # declared type does not match the data, or is not an image type LUNA accepts
    assert _code(decode_image, jpeg, "image/png") == errors.BAD_IMAGE_CONTENT_TYPE
    assert _code(decode_image, jpeg, "application/pdf") == errors.BAD_IMAGE_CONTENT_TYPE
    assert _code(decode_image, _encode(small, "GIF")) == errors.BAD_IMAGE_CONTENT_TYPE
    # limits
    assert _code(decode_image, jpeg, max_bytes=len(jpeg) - 1) == errors.BAD_JSON
    assert _code(decode_image, jpeg, max_pixels=small.shape[0] * small.shape[1] - 1) == (
        errors.BAD_JSON
    )


def test_size_limit_comes_from_the_environment(
    small: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app reads the limits (settings.image_limits) and the core decodes within them."""
    jpeg = _encode(small, "JPEG")
    monkeypatch.setenv("LUNA_MAX_IMAGE_BYTES", str(len(jpeg) - 1))
    limits = settings.image_limits()
    assert _code(images.as_rgb_array, jpeg, limits=limits) == errors.BAD_JSON
    monkeypatch.setenv("LUNA_MAX_IMAGE_BYTES", str(len(jpeg)))
    limits = settings.image_limits()
    assert images.as_rgb_array(jpeg, limits=limits).shape == small.shape


def test_arrays_are_validated() -> None:
    assert images.as_rgb_array(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert _code(images.as_rgb_array, np.zeros((4, 5, 3), np.float32)) == errors.BAD_IMAGE
    assert _code(images.as_rgb_array, np.zeros((0, 5, 3), np.uint8)) == errors.BAD_IMAGE
