"""Tests for coverage.scenario: the frozen scenario, its JSON (version 2, reading version 1)."""

from __future__ import annotations

import json

import pytest

from coverage.audit import AuditParams
from coverage.errors import InputError
from coverage.scenario import SCENARIO_SCHEMA_VERSION, AddedStation, Scenario
from coverage.siting import SitingParams

#: A file as version 1 wrote it (flat audit fields, a SitingRequest).
V1 = {
    "schema_version": 1,
    "name": "旧方案",
    "speed_kmh": 4.0,
    "thresholds_min": [5.0, 10.0, 15.0],
    "level_thresholds_min": {"community": 5.0, "street": 15.0},
    "added": [{"lon": 104.07, "lat": 30.66, "name": "新站", "level": "community"}],
    "closed": ["osm-1"],
    "siting": {
        "k": None,
        "target_share": 0.9,
        "max_k": 20,
        "minutes": 10.0,
        "secondary_minutes": 5.0,
        "spacing_m": 150.0,
        "exact": True,
        "time_limit_s": 30.0,
    },
    "accepted_sites": [{"lon": 104.08, "lat": 30.67, "name": "#1", "level": None}],
}


def test_version_1_file_maps_onto_the_parameter_dataclasses() -> None:
    s = Scenario.from_dict(V1)
    assert s.name == "旧方案"
    assert s.audit == AuditParams(
        speed_kmh=4.0,
        thresholds_min=(5.0, 10.0, 15.0),
        level_thresholds_min={"community": 5.0, "street": 15.0},
    )
    assert s.siting == SitingParams(
        target_share=0.9,
        max_k=20,
        minutes=10.0,
        secondary_minutes=5.0,
        speed_kmh=4.0,  # version 1 had one speed, the scenario's
        spacing_m=150.0,
        exact=True,
        time_limit_s=30.0,
    )
    assert s.added == (AddedStation(104.07, 30.66, "新站", "community"),)
    assert s.closed == ("osm-1",)
    assert s.accepted_sites == (AddedStation(104.08, 30.67, "#1"),)
    # written back as version 2, it reads back equal
    d = s.to_dict()
    assert d["schema_version"] == SCENARIO_SCHEMA_VERSION == 2
    assert d["audit"]["thresholds_min"] == [5.0, 10.0, 15.0]
    assert d["siting"]["target_share"] == 0.9
    assert "speed_kmh" not in d
    assert Scenario.from_json(s.to_json()) == s


def test_version_1_without_version_field_and_without_siting() -> None:
    s = Scenario.from_json(json.dumps({"speed_kmh": 5.0, "thresholds_min": [10]}))
    assert s.audit == AuditParams(speed_kmh=5.0, thresholds_min=(10.0,))
    assert s.siting is None


def test_version_2_round_trip_and_defaults() -> None:
    s = Scenario(
        name="x",
        audit=AuditParams(thresholds_min=(3.0, 7.0)),
        siting=SitingParams(k=3, minutes=7.0),
        closed=("a",),
    )
    assert Scenario.from_json(s.to_json()) == s
    assert Scenario.from_dict({"schema_version": 2}) == Scenario(name="scenario")
    assert (s.speed_kmh, s.thresholds_min) == (4.5, (3.0, 7.0))


@pytest.mark.parametrize(
    "doc",
    [
        {"schema_version": 3},
        {"schema_version": 2, "audit": {"speed_kmh": 0}},
        {"schema_version": 2, "siting": {"k": 2, "target_share": 0.5}},
        {"schema_version": 2, "siting": {"target_share": 1.5}},
        {"schema_version": 2, "siting": {"k": 1, "time_limit_s": -1}},
        {"schema_version": 2, "siting": {"k": 1, "secondary_minutes": 0}},
        {"schema_version": 1, "siting": {"k": 1, "spacing_m": float("inf")}},
        {"schema_version": 2, "added": [{"lon": 200, "lat": 0}]},
    ],
)
def test_bad_fields_are_refused_by_the_dataclasses(doc: dict[str, object]) -> None:
    with pytest.raises(InputError):
        Scenario.from_dict(doc)


def test_scenario_refuses_other_parameter_types() -> None:
    with pytest.raises(InputError, match="AuditParams"):
        Scenario(audit={"speed_kmh": 4.0})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="SitingParams"):
        Scenario(siting={"k": 1})  # type: ignore[arg-type]


def test_edits() -> None:
    s = Scenario().with_added(AddedStation(104.0, 30.0)).with_closed("c1").with_closed("c1")
    assert s.closed == ("c1",)
    assert len(s.added) == 1
    with pytest.raises(InputError, match="numeric"):
        AddedStation("east", 30.0)  # type: ignore[arg-type]
