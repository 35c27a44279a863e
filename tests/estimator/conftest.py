"""Shared fixtures: one model repository per session, one Estimator on onnxruntime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from services.estimator import model_repo as mr
from services.estimator.core import Estimator
from services.estimator.images import decode_image
from services.estimator.install import install_models


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<repo root>/models` when `make setup` built it as MODELS says now, else a fresh install
    in a temp dir."""
    default = mr.models_dir()
    if mr.manifest_is_current(default):
        return default
    repo = tmp_path_factory.mktemp("estimator") / "models"
    install_models(repo, progress=False)
    return repo


@pytest.fixture(scope="session")
def test_images(model_repo: Path) -> Path:
    return mr.test_images_dir(model_repo)


@pytest.fixture(scope="session")
def load_image(test_images: Path):
    def load(name: str) -> np.ndarray:
        return decode_image((test_images / name).read_bytes())

    return load


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="session")
async def estimator(model_repo: Path) -> AsyncIterator[Estimator]:
    est = Estimator(repo_dir=model_repo, detector="yunet", sample_format="png")
    yield est
    await est.close()
