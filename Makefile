# The README's commands: `make setup`, `make run`, `make test`; plus `make proto`, `make bench`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
BUF := .node/node_modules/.bin/buf
BUF_VERSION := 1.75.0
PROTOS := $(shell find protos -name '*.proto' | sort)

.PHONY: setup run test proto proto-check lint bench models clean

setup: $(BIN)/luna $(BUF) models

$(BIN)/luna: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/luna

$(BUF):
	npm install --prefix .node --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

models: $(BIN)/luna
	$(BIN)/luna models install

run:
	$(BIN)/luna up

test:
	$(BIN)/python -m pytest -q

# Regenerate the Python stubs and the descriptor set Envoy's transcoder reads.
proto: $(BUF)
	$(BUF) lint
	rm -rf gen/luna
	$(BIN)/python -m grpc_tools.protoc -I protos -I third_party/googleapis \
		--python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	find gen/luna -type d -exec touch {}/__init__.py \;
	$(BUF) build -o deploy/envoy/luna_descriptor.pb

# Fails when the checked-in stubs differ from what `make proto` produces.
proto-check: proto
	git diff --exit-code --stat -- gen deploy/envoy/luna_descriptor.pb
	test -z "$$(git status --porcelain -- gen deploy/envoy/luna_descriptor.pb)"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BUF) lint

# Each benchmark starts what it measures and saves JSON under bench/results/.
bench:
	$(BIN)/python -m bench.gateway.run
	$(BIN)/python -m bench.estimator.run
	$(BIN)/python -m bench.matcher.run
	$(BIN)/python -m bench.events.run
	$(BIN)/python -m bench.backport3.run

clean:
	rm -rf $(VENV) .node gen/luna
