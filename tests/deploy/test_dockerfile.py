"""The platform's Dockerfile and .dockerignore, checked offline (no Docker engine runs here):
stages and references, every COPY source present in the build context, the Python version and
the dependency list taken from pyproject.toml, and every command the image runs."""

from __future__ import annotations

import fnmatch
import importlib.util
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploytest import REPO

from services.common import config

DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


@dataclass
class Instruction:
    op: str
    args: str
    stage: str


def parse(text: str) -> tuple[dict[str, str], list[Instruction]]:
    """(global ARG defaults, instructions with the stage each belongs to)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    out: list[Instruction] = []
    stage = ""
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not stage:
            name, _, default = rest.partition("=")
            args[name] = default
            continue
        if op == "FROM":
            words = rest.split()
            assert len(words) == 3 and words[1].upper() == "AS", line
            stage = words[2]
        out.append(Instruction(op, rest, stage))
    return args, out


ARGS, INSTRUCTIONS = parse(DOCKERFILE.read_text())


def _expand(value: str) -> str:
    for name, default in ARGS.items():
        value = value.replace(f"${{{name}}}", default)
    return value


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching rule wins; a rule matching a parent folder
    covers what is inside it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        glob = pattern.replace("**/", "*")  # fnmatch's * crosses '/' as ** does
        if any(fnmatch.fnmatchcase(p, glob) for p in prefixes):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]


def test_stages_and_base_image() -> None:
    froms = [i for i in INSTRUCTIONS if i.op == "FROM"]
    names = [i.stage for i in froms]
    assert len(names) == len(set(names)) and names[-1] == "runtime"
    for i in froms:
        base = _expand(i.args.split()[0])
        assert base in names[: names.index(i.stage)] or base.startswith("python:"), base
    # The interpreter pyproject.toml requires.
    base = _expand("${PYTHON_IMAGE}")
    assert base.startswith("python:3.11-"), base
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.12"


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    patterns = _dockerignore()
    stages_so_far: list[str] = []
    copied = set()
    for i in INSTRUCTIONS:
        if i.op == "FROM":
            stages_so_far.append(i.stage)
        if i.op not in ("COPY", "ADD"):
            continue
        assert i.op == "COPY", "ADD fetches or unpacks implicitly: use COPY"
        words = shlex.split(i.args)
        flags = [w for w in words if w.startswith("--")]
        *sources, _dest = [w for w in words if not w.startswith("--")]
        source_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
        if source_stage:
            assert source_stage[0] in stages_so_far[:-1], i.args  # an earlier stage
            continue
        for source in sources:
            assert (REPO / source).exists(), source
            assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
            copied.add(source)
    assert {"pyproject.toml", "services", "gen", "deploy/envoy/luna_descriptor.pb"} <= copied


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = _dockerignore()
    local = [".venv/bin/python", "models/manifest.json", "var/luna.lock", ".git/HEAD"]
    local += ["services/__pycache__/x.pyc", "bench/results/x.json", "tests/conftest.py"]
    for path in local:
        assert _ignored(path, patterns), path
    for path in ("services/faces/migrations/0001_faces.sql", "gen/luna/__init__.py"):
        assert not _ignored(path, patterns), path


def _run_args(predicate: str) -> list[str]:
    return [i.args for i in INSTRUCTIONS if i.op == "RUN" and predicate in i.args]


def test_dependencies_are_exactly_pyprojects() -> None:
    (run,) = _run_args("tomllib")
    command = shlex.split(run.split("&&")[0].split(">")[0])
    assert command[:2] == ["python", "-c"]
    out = subprocess.run(
        [sys.executable, "-c", command[2]], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.split("\n")[:-1] == PYPROJECT["project"]["dependencies"]
    assert "pip install -r /tmp/requirements.txt" in run
    # The project itself without dependencies, editable so REPO_ROOT stays /app.
    assert _run_args("pip install --no-deps -e .")


def test_hnswlib_is_built_for_any_cpu() -> None:
    build_env = " ".join(i.args for i in INSTRUCTIONS if i.stage == "build" and i.op == "ENV")
    assert "HNSWLIB_NO_NATIVE=1" in build_env


def test_models_are_built_by_the_project_command() -> None:
    (run,) = _run_args("luna models install")
    argv = shlex.split(run.split("&&")[0])
    assert argv[:3] == ["luna", "models", "install"]
    res = subprocess.run(
        [str(Path(sys.executable).with_name("luna")), *argv[1:3], "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--repo" in res.stdout and argv[3] == "--repo"
    runtime_env = " ".join(i.args for i in INSTRUCTIONS if i.stage == "runtime" and i.op == "ENV")
    assert f"LUNA_MODELS_DIR={argv[4]}" in runtime_env


def test_runtime_settings_commands_and_ports() -> None:
    runtime = [i for i in INSTRUCTIONS if i.stage == "runtime"]
    env = {}
    for i in runtime:
        if i.op == "ENV":
            env.update(dict(w.split("=", 1) for w in shlex.split(i.args)))
    declared = {s.name for s in config.declared()}
    assert {k for k in env if k.startswith("LUNA_")} - declared == set()
    assert env["LUNA_HOST"] == "0.0.0.0"
    assert env["PYTHONPATH"] == "/app:/app/gen"
    (cmd,) = [i for i in runtime if i.op == "CMD"]
    argv = shlex.split(cmd.args.replace("[", "").replace("]", "").replace(",", " "))
    assert argv[:2] == ["python", "-m"]
    assert importlib.util.find_spec(f"{argv[2]}.__main__") is not None
    (expose,) = [i for i in runtime if i.op == "EXPOSE"]
    ports = {int(p) for p in expose.args.split()}
    from services.gateway import sender_api, tasks_api
    from services.gateway.backport3 import PORT as BACKPORT3_PORT

    listeners = (tasks_api.TASKS_API_PORT, sender_api.SENDER_PORT, BACKPORT3_PORT)
    gateway = {config.gateway_port(), *(int(s.default) for s in listeners)}
    assert ports == gateway | set(config.SERVICE_PORTS.values())
    (user,) = [i for i in runtime if i.op == "USER"]
    assert user.args != "root" and user.args != "0"


@pytest.mark.parametrize("module", [f"services.{s}" for s in (*config.SERVICE_PORTS, "gateway")])
def test_each_service_command_exists(module: str) -> None:
    assert importlib.util.find_spec(f"{module}.__main__") is not None


def test_the_build_context_is_enough_to_run_every_service(tmp_path: Path) -> None:
    """Copy what .dockerignore lets through, then import every service's app from that copy
    alone (the image's PYTHONPATH), so nothing a service needs is left out of the image."""
    patterns = _dockerignore()
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kept = [p for p in tracked if not _ignored(p, patterns) and (REPO / p).is_file()]
    for path in kept:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    assert not any(p.startswith(("tests/", "bench/", "models/", ".venv/")) for p in kept)
    data_files = [p for p in tracked if p.startswith("services/") and not p.endswith(".py")]
    assert set(data_files) <= set(kept)  # migrations, error registry, OpenAPI, vendored models
    modules = [f"services.{s}.app" for s in (*config.SERVICE_PORTS, "gateway")]
    modules += ["services.common.healthcheck", "services.launcher.cli", "luna.faces.v1.faces_pb2"]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(tmp_path)!r}), module.__file__\n"
        "print('ok')\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{tmp_path / 'gen'}", "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]
