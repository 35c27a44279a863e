"""What validating one request body costs the gateway, jsonschema_rs first vs jsonschema only:

    python -m bench.gateway.validate_cost [--calls 20000]

Times `RequestValidator.validate_body` in-process, both ways in the same run (alternating rounds,
so drift hits both), for the small-list `POST /6/matcher/faces` body that
bench.gateway.profile_match sends, a `POST /6/faces` body and an invalid match body (which takes
the slow path either way, for its LUNA error). Prints microseconds per call. Not a test.
"""

from __future__ import annotations

import argparse
import base64
import copy
import time
from typing import Any

import numpy as np
import yaml

from services.common.errors import LunaError
from services.gateway.validation import RequestValidator

SPEC = "services/gateway/openapi/luna-platform-v6.yaml"
UUID = "8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"


def bodies() -> dict[str, tuple[str, Any]]:
    q = np.random.default_rng(5).standard_normal(128).astype("<f4")
    match = {
        "references": [
            {"type": "raw_descriptor", "descriptor": base64.b64encode(q.tobytes()).decode()}
        ],
        "candidates": [{"filters": {"list_id": UUID}, "limit": 3}],
    }
    bad = copy.deepcopy(match)
    bad["candidates"][0]["limit"] = "three"
    face = {"attribute": {"attribute_id": UUID}, "user_data": "p1", "lists": [UUID]}
    return {
        "match (valid)": ("matchFaces", match),
        "create face (valid)": ("createFace", face),
        "match (invalid)": ("matchFaces", bad),
    }


def per_call_us(validator: RequestValidator, op_id: str, body: Any, calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        try:
            validator.validate_body(op_id, copy.copy(body))
        except LunaError:
            pass
    return (time.perf_counter() - t) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()
    with open(SPEC, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    fast = RequestValidator(spec)
    slow = RequestValidator(spec)
    for op in slow._ops.values():
        op.body_fast = None  # jsonschema only, as before
    for name, (op_id, body) in bodies().items():
        times: dict[str, list[float]] = {"jsonschema only": [], "jsonschema_rs first": []}
        for _ in range(3):
            times["jsonschema only"].append(per_call_us(slow, op_id, body, args.calls // 3))
            times["jsonschema_rs first"].append(per_call_us(fast, op_id, body, args.calls // 3))
        row = "  ".join(f"{k} {min(v):8.2f} us" for k, v in times.items())
        print(f"{name:<22} {row}")


if __name__ == "__main__":
    main()
