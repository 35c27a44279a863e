"""Detections -> units, what becomes one event each: one per kept face and per input
descriptor, or one for the whole request (`aggregate_attributes`). Pure: no calls.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb

from services.common import aggregation, descriptors, errors, ids, luna_json
from services.events.pipeline import render
from services.events.pipeline.filters import (
    ETHNICITY_NAMES,
    LIVENESS_NAMES,
    Facts,
    detect_reasons,
)
from services.events.pipeline.shared import Detected, Unit

# Estimations averaged over the faces of an aggregated event.
AGGREGATED = ("emotions", "mask", "liveness")


def split_detections(
    req: ppb.GenerateEventsRequest,
    detect_policy: dict[str, Any],
    detections: dict[int, epb.ImageDetections],
) -> tuple[list[Detected], list[dict[str, Any]]]:
    """(faces kept, LUNA `filtered_detections` of the faces detect_policy filters out)."""
    kept: list[Detected] = []
    filtered: list[dict[str, Any]] = []
    for index, dets in sorted(detections.items()):
        name = req.inputs[index].image.filename
        if req.aggregate_attributes and len(dets.faces) > 1:
            raise errors.LunaError(
                errors.MULTIPLE_FACES, f"Multiple faces found in image {name or index} detect"
            )
        for face in dets.faces:
            est = luna_json.estimations(face)
            reasons = detect_reasons(detect_policy, est)
            if reasons:
                filtered.append(
                    {
                        "filename": name,
                        "object": {"detection": render.detection(face, est)},
                        "filter_reasons": reasons,
                    }
                )
            else:
                kept.append(Detected(index, face, est))
    return kept, filtered


def build_units(
    req: ppb.GenerateEventsRequest,
    kept: list[Detected],
    metas: list[dict[str, Any]],
    version: int,
) -> list[Unit]:
    """The request's units, their facts filled in; `version` is that of input descriptors."""
    descriptor_inputs = [i for i, item in enumerate(req.inputs) if item.HasField("descriptor")]
    units: list[Unit] = []
    if req.aggregate_attributes:
        if kept or descriptor_inputs:
            units.append(aggregate(req, kept, descriptor_inputs, metas, version))
    else:
        for det in kept:
            unit = Unit(ids.new_id(), [det.input_index], [det], metas[det.input_index])
            if det.face.HasField("descriptor"):
                unit.descriptor = det.face.descriptor.data
                unit.version = det.face.descriptor.version
            unit.basic = det.est.get("basic_attributes")
            units.append(unit)
        for i in descriptor_inputs:
            d = req.inputs[i].descriptor
            units.append(Unit(ids.new_id(), [i], [], metas[i], d.descriptor, version))
    for unit in units:
        unit.facts = facts_of(unit)
    return units


def aggregate(
    req: ppb.GenerateEventsRequest,
    kept: list[Detected],
    descriptor_inputs: list[int],
    metas: list[dict[str, Any]],
    version: int,
) -> Unit:
    """One event for the whole request: the first input's fields speak for it."""
    inputs = sorted({d.input_index for d in kept} | set(descriptor_inputs))
    unit = Unit(ids.new_id(), inputs, kept, metas[inputs[0]])
    descs = [d.face.descriptor.data for d in kept if d.face.HasField("descriptor")]
    descs += [req.inputs[i].descriptor.descriptor for i in descriptor_inputs]
    if descs:
        if len({len(d) for d in descs}) > 1:
            raise errors.LunaError(errors.BAD_DESCRIPTOR_LENGTH, "Descriptors of different lengths")
        unit.descriptor = descriptors.mean_unit(descs)
        unit.version = next(
            (d.face.descriptor.version for d in kept if d.face.HasField("descriptor")),
            version,
        )
    basics = [d.est["basic_attributes"] for d in kept if "basic_attributes" in d.est]
    if basics:
        unit.basic = aggregation.mean_basic_attributes(basics)
    attrs: dict[str, Any] = {}
    for name in AGGREGATED:
        values = [d.est[name] for d in kept if name in d.est]
        if values:
            attrs[name] = aggregate_estimation(values)
    if unit.basic:
        attrs["basic_attributes"] = unit.basic
    unit.aggregate = {"face": {"attributes": attrs}} if attrs else {}
    return unit


def aggregate_estimation(values: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of LUNA {predominant_x, estimations{...}} objects; predominant = the argmax."""
    keys = set().union(*(v.get("estimations", {}) for v in values))
    mean = {
        k: sum(v.get("estimations", {}).get(k, 0.0) for v in values) / len(values) for k in keys
    }
    out: dict[str, Any] = {"estimations": mean}
    for pkey in {k for v in values for k in v if k.startswith("predominant")}:
        out[pkey] = max(mean, key=lambda k: mean[k]) if mean else None
    if any("prediction" in v for v in values):
        out["prediction"] = Counter(v.get("prediction") for v in values).most_common(1)[0][0]
    return out


def facts_of(unit: Unit) -> Facts:
    """What the complex filters of conditional tags and storage policies read of a unit."""
    facts = Facts()
    if unit.basic:
        facts.age = unit.basic.get("age")
        facts.gender = unit.basic.get("gender")
        eth = unit.basic.get("ethnicity")
        facts.ethnicity = ETHNICITY_NAMES.get(eth) if isinstance(eth, int) else eth
    liveness = (unit.aggregate or {}).get("face", {}).get("attributes", {}).get("liveness")
    if liveness is None and unit.faces:
        liveness = unit.faces[0].est.get("liveness")
    if liveness is not None:
        facts.liveness = LIVENESS_NAMES.get(liveness.get("prediction"))
    return facts
