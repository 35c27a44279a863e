# syntax=docker/dockerfile:1
# One image for the whole platform: every service is `python -m services.<name>` (the
# Kubernetes manifests and docker-compose.yml only change the command), and the model
# repository is built into the image by `luna models install`, so a node never downloads models
# at start and Triton's init container copies the very same files (deploy/README.md).
#
#   docker build -t luna-mesh:0.1.0 .
#   docker run --rm luna-mesh:0.1.0 luna config

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the virtual environment (hnswlib compiles from source, so gcc lives here only) ---
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
# hnswlib adds -march=native unless told not to: an image runs on CPUs other than the builder's.
ENV HNSWLIB_NO_NATIVE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first, from pyproject.toml alone, so a code change does not rebuild them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY services ./services
COPY gen ./gen
# Editable install: the `luna` entry point, and REPO_ROOT stays /app (models, migrations).
RUN pip install --no-deps -e .

# --- models: the Triton-layout model repository, built once per image ---
FROM build AS models
RUN luna models install --repo /app/models \
    && rm -rf /root/.cache

# --- runtime ---
FROM ${PYTHON_IMAGE} AS runtime
# Every shared library the wheels link (libstdc++, libgcc_s, zlib, libc) is in the slim base.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin luna
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LUNA_DATA_DIR=/var/lib/luna \
    LUNA_MODELS_DIR=/app/models \
    LUNA_HOST=0.0.0.0 \
    LUNA_LOG_JSON=1
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY --from=models /app/models /app/models
COPY --from=models /app/test_images /app/test_images
COPY deploy/envoy/luna_descriptor.pb /app/deploy/envoy/luna_descriptor.pb
RUN mkdir -p /var/lib/luna && chown luna /var/lib/luna
USER 10001
# REST gateway (API /6, Tasks API, Sender, Backport 3); gRPC faces, events, estimator, tasks,
# matcher, backport3 (LUNA_<SVC>_ADDRESS).
EXPOSE 5000 5050 5080 5140 5110 5120 5130 5150 5160 5170
CMD ["python", "-m", "services.gateway"]
