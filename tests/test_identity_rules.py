"""The rules that keep households apart, stable keys and the threshold, on hand-made cases."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from territoria.identity.cluster import cluster
from territoria.identity.comparisons import conflict_reason, given_names_compatible
from territoria.identity.features import FEATURE_SCHEMA
from territoria.identity.households import household_labels
from territoria.identity.keys import assign_keys
from territoria.identity.model import expected_f1_threshold


def person(
    uid: str,
    given: str,
    family: str = "TESTMAN",
    dob: str | None = None,
    sex: str | None = None,
    max_y: int | None = None,
) -> dict[str, Any]:
    year, month, day = (int(x) for x in dob.split("-")) if dob else (None, None, None)
    return {
        "unique_id": uid,
        "fn": family,
        "gn1": given,
        "gk": given,
        "dob": dob,
        "dob_y": year,
        "dob_m": month,
        "dob_d": day,
        "sex": sex,
        "rec": uid.rsplit("|", 1)[0],
        "max_y": max_y,
    }


def rows_of(*people: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["unique_id"]: p for p in people}


def labels(
    result_ids: list[str],
    rows: dict[str, dict[str, Any]],
    pairs: list[tuple[str, str, float]],
    **kw: Any,
) -> dict[str, str]:
    return cluster(result_ids, rows, pairs, 0.5, **kw).labels


def test_twins_are_never_one_person() -> None:
    rows = rows_of(
        person("library|1|m", "LEA", dob="2012-05-04", sex="F"),
        person("school|7|child", "LOUNA", dob="2012-05-04", sex="F"),
        person("library|2|m", "LEA", dob="2012-05-04"),
    )
    pairs = [("library|1|m", "school|7|child", 0.999), ("library|1|m", "library|2|m", 0.99)]
    out = labels(list(rows), rows, pairs)
    assert out["library|1|m"] == out["library|2|m"]
    assert out["school|7|child"] != out["library|1|m"]
    assert conflict_reason(rows["library|1|m"], rows["school|7|child"]) == "prénoms incompatibles"


def test_father_and_son_with_the_same_name_stay_apart() -> None:
    father = person("library|1|m", "JEAN", dob="1961-03-02")
    son = person("transport|9|h", "JEAN", dob="1990-11-20")
    contract = person("water|5|holder", "JEAN")  # no birth date: could be either
    rows = rows_of(father, son, contract)
    pairs = [
        ("library|1|m", "water|5|holder", 0.99),
        ("transport|9|h", "water|5|holder", 0.985),
        ("library|1|m", "transport|9|h", 0.97),
    ]
    result = cluster(list(rows), rows, pairs, 0.5)
    out = result.labels
    assert len({out[u] for u in rows}) == 3  # the contract is a toss-up: left apart
    assert set(result.ambiguous["water|5|holder"]) == {"library|1|m", "transport|9|h"}
    # With clearly stronger evidence for the father, the contract joins him.
    clear = [("library|1|m", "water|5|holder", 0.999), ("transport|9|h", "water|5|holder", 0.6)]
    out = labels(list(rows), rows, clear)
    assert out["water|5|holder"] == out["library|1|m"] != out["transport|9|h"]


def test_two_persons_of_one_record_and_young_guardians_are_apart() -> None:
    holder = person("water|5|holder", "IBRAHIM")
    co_holder = person("water|5|co_holder", "IBRAHIM")
    assert conflict_reason(holder, co_holder) == "deux personnes d'une même fiche"
    guardian = person("school|3|guardian_1", "NOAH", max_y=2005)
    teenager = person("library|4|m", "NOAH", dob="2009-01-01")
    assert conflict_reason(guardian, teenager) == "un responsable légal né après son enfant"
    assert conflict_reason(person("a|1|x", "ALEX", sex="F"), person("b|1|x", "ALEX", sex="M"))


@pytest.mark.parametrize(
    ("a", "b", "compatible"),
    [
        ("JEAN PIERRE", "JEAN", True),
        ("MATHIEU", "MATHEIU", True),
        ("LOUIS", "LOUISE", False),
        ("MAEL", "MANEL", False),
        ("LEA", "LOUNA", False),
    ],
)
def test_given_names_compatibility(a: str, b: str, compatible: bool) -> None:
    assert given_names_compatible(a, b) is compatible


def test_agents_decisions_override_scores() -> None:
    rows = rows_of(
        person("a|1|x", "ANNE", dob="1980-01-01"), person("b|1|x", "ANNE", dob="1999-09-09")
    )
    pairs = [("a|1|x", "b|1|x", 0.1)]
    forced = labels(list(rows), rows, pairs, same=[("a|1|x", "b|1|x")])
    assert forced["a|1|x"] == forced["b|1|x"]
    rows = rows_of(person("a|1|x", "ANNE"), person("b|1|x", "ANNE"))
    kept_apart = labels(
        list(rows), rows, [("a|1|x", "b|1|x", 0.99)], different=[("a|1|x", "b|1|x")]
    )
    assert kept_apart["a|1|x"] != kept_apart["b|1|x"]


def test_one_to_one_linkage_takes_one_record_per_source() -> None:
    rows = rows_of(
        person("a|1|p", "BRIANNA", dob="1970-01-01"),
        person("b|1|p", "BAILEY", dob="1970-01-01"),  # a corrupted copy, not a twin
        person("b|2|p", "BRIANA", dob="1970-01-01"),
    )
    pairs = [("a|1|p", "b|1|p", 0.99), ("a|1|p", "b|2|p", 0.95)]
    out = labels(list(rows), rows, pairs, one_per_source=True)
    assert out["a|1|p"] == out["b|1|p"] != out["b|2|p"]


def test_keys_survive_reclustering_with_merge_and_split_events() -> None:
    first, events = assign_keys({"g1": ["m1", "m2"], "g2": ["m3"]}, {}, prefix="P", entity="person")
    assert [e.kind for e in events] == ["created", "created"]
    same, events = assign_keys({"x": ["m1", "m2"], "y": ["m3"]}, first, prefix="P", entity="person")
    assert same == first and events == []
    merged, events = assign_keys(
        {"x": ["m1", "m2", "m3"]},
        first,
        prefix="P",
        entity="person",
        reason_for=lambda a, b: "test",
    )
    assert merged["m3"] == first["m1"]
    assert [(e.kind, e.entity_key, e.other_key) for e in events] == [
        ("merged", first["m3"], first["m1"])
    ]
    split, events = assign_keys(
        {"x": ["m1"], "y": ["m2"], "z": ["m3"]}, merged, prefix="P", entity="person"
    )
    assert split["m1"] == first["m1"] and split["m2"] != first["m1"]
    assert {e.kind for e in events} == {"split"}
    added, events = assign_keys(
        {"x": ["m1", "m2", "m4"], "z": ["m3"]}, first, prefix="P", entity="person"
    )
    assert added["m4"] == first["m1"]
    assert [(e.kind, e.mention_id) for e in events] == [("attached", "m4")]


def test_threshold_without_labels_maximises_expected_f1() -> None:
    assert expected_f1_threshold(pa.array([], pa.float64())) == 0.5
    confident = pa.array([0.99] * 50 + [0.02] * 500)
    assert expected_f1_threshold(confident) == pytest.approx(0.99)
    assert expected_f1_threshold(pa.array([0.97, 0.96, 0.9, 0.6, 0.55])) >= 0.5


def _features(rows: list[dict[str, Any]]) -> pa.Table:
    columns = {name: [r.get(name) for r in rows] for name in FEATURE_SCHEMA.names}
    return pa.table(columns, schema=FEATURE_SCHEMA)


def test_households_from_relationships_and_dwellings() -> None:
    features = _features(
        [
            {
                "unique_id": "w|1|holder",
                "bkey": "69001|3|RUE X",
                "dkey": "69001|3|RUE X|APT 2",
                "cpl": "APT 2",
            },
            {
                "unique_id": "w|1|co_holder",
                "bkey": "69001|3|RUE X",
                "dkey": "69001|3|RUE X|APT 2",
                "cpl": "APT 2",
            },
            {
                "unique_id": "l|5|m",
                "bkey": "69001|3|RUE X",
                "dkey": "69001|3|RUE X|APT 2",
                "cpl": "APT 2",
            },
            {
                "unique_id": "l|6|m",
                "bkey": "69001|3|RUE X",
                "dkey": "69001|3|RUE X|APT 9",
                "cpl": "APT 9",
            },
            {"unique_id": "l|7|m", "bkey": "69001|3|RUE X", "dkey": "69001|3|RUE X|", "cpl": None},
            {"unique_id": "s|2|child", "bkey": None, "dkey": None, "cpl": None},
        ]
    )
    person_of = {uid: uid for uid in features["unique_id"].to_pylist()}
    relations = pa.table(
        {"mention_a": ["w|1|holder"], "mention_b": ["s|2|child"], "kind": ["guardian_of"]}
    )
    out = household_labels(person_of, features, relations)
    assert out["w|1|holder"] == out["w|1|co_holder"] == out["l|5|m"] == out["s|2|child"]
    assert out["l|6|m"] != out["w|1|holder"]  # another flat of the building
    assert out["l|7|m"] not in {out["w|1|holder"], out["l|6|m"]}  # flat unknown: alone
