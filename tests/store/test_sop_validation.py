"""Every validation rule of the SOP definition rejects bad input with a clear message."""

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from store.seed import EXAMPLE_SOPS
from store.sops import SopDefinition

Document = dict[str, Any]

DESIGN_EXAMPLE: Document = {
    "id": "loto-press-7",
    "title": "Lockout/Tagout: Press 7",
    "description": "...",
    "steps": [
        {
            "id": "isolate",
            "title": "Isolate energy",
            "instructions": "...",
            "checks": [
                {
                    "id": "breaker-off",
                    "prompt": "Main breaker off and locked",
                    "kind": "confirm",
                    "required": True,
                },
                {
                    "id": "residual-v",
                    "prompt": "Residual voltage",
                    "kind": "measurement",
                    "unit": "V",
                    "min": 0,
                    "max": 5,
                    "required": True,
                },
            ],
        }
    ],
}


def confirm(check_id: str) -> Document:
    return {"id": check_id, "prompt": f"Confirm {check_id}", "kind": "confirm"}


def step(step_id: str, *checks: Document) -> Document:
    return {"id": step_id, "title": f"Step {step_id}", "checks": list(checks)}


def set_check(**fields: Any) -> Callable[[Document], None]:
    def mutate(document: Document) -> None:
        document["steps"][0]["checks"][1].update(fields)

    return mutate


def set_confirm(**fields: Any) -> Callable[[Document], None]:
    def mutate(document: Document) -> None:
        document["steps"][0]["checks"][0].update(fields)

    return mutate


def drop_check_field(name: str) -> Callable[[Document], None]:
    def mutate(document: Document) -> None:
        del document["steps"][0]["checks"][1][name]

    return mutate


def set_sop(**fields: Any) -> Callable[[Document], None]:
    return lambda document: document.update(fields)


def set_step(**fields: Any) -> Callable[[Document], None]:
    return lambda document: document["steps"][0].update(fields)


def add_step(new_step: Document) -> Callable[[Document], None]:
    return lambda document: document["steps"].append(new_step)


INVALID: list[tuple[str, Callable[[Document], None], str]] = [
    ("no steps", set_sop(steps=[]), "at least 1 item"),
    (
        "too many steps",
        set_sop(steps=[step(f"s{i}", confirm(f"c{i}")) for i in range(101)]),
        "at most 100 items",
    ),
    (
        "too many checks",
        set_sop(
            steps=[step(f"s{i}", *(confirm(f"c{i}-{j}") for j in range(6))) for i in range(84)]
        ),
        "at most 500 checks",
    ),
    ("step without checks", set_step(checks=[]), "at least 1 item"),
    (
        "duplicate step id",
        add_step(step("isolate", confirm("other"))),
        "step id 'isolate' is used more than once",
    ),
    (
        "check id reused in another step",
        add_step(step("verify", confirm("breaker-off"))),
        "check id 'breaker-off' is used more than once",
    ),
    ("measurement without unit", drop_check_field("unit"), "needs a unit"),
    ("measurement with blank unit", set_check(unit="  "), "at least 1 character"),
    ("measurement without limits", set_check(min=None, max=None), "needs min, max or both"),
    ("min above max", set_check(min=10, max=5), "min 10.0 greater than max 5.0"),
    ("infinite max", set_check(max=float("inf")), "finite number"),
    ("nan min", set_check(min=float("nan")), "finite number"),
    ("confirm with unit", set_confirm(unit="V"), "must not have unit, min or max"),
    ("confirm with min", set_confirm(min=0), "must not have unit, min or max"),
    ("confirm with max", set_confirm(max=1), "must not have unit, min or max"),
    ("unknown kind", set_confirm(kind="photo"), "'confirm' or 'measurement'"),
    ("uppercase sop id", set_sop(id="LOTO"), "a-z, 0-9"),
    ("sop id starting with a dash", set_sop(id="-loto"), "starting with a letter or a digit"),
    ("sop id too long", set_sop(id="a" * 65), "1 to 64 characters"),
    ("empty step id", set_step(id=""), "1 to 64 characters"),
    ("check id with a space", set_confirm(id="breaker off"), "a-z, 0-9"),
    ("check id with a trailing newline", set_confirm(id="breaker\n"), "a-z, 0-9"),
    ("empty sop title", set_sop(title=""), "at least 1 character"),
    ("blank step title", set_step(title="   "), "at least 1 character"),
    ("sop title too long", set_sop(title="t" * 201), "at most 200 characters"),
    ("empty prompt", set_confirm(prompt=""), "at least 1 character"),
    ("prompt too long", set_confirm(prompt="p" * 501), "at most 500 characters"),
    ("instructions too long", set_step(instructions="i" * 5001), "at most 5000 characters"),
    ("description too long", set_sop(description="d" * 5001), "at most 5000 characters"),
    ("unknown sop field", set_sop(owner="me"), "Extra inputs are not permitted"),
    ("unknown step field", set_step(order=1), "Extra inputs are not permitted"),
    ("unknown check field", set_confirm(photo=True), "Extra inputs are not permitted"),
    ("missing id", lambda document: document.pop("id"), "Field required"),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_definition_is_rejected(mutate: Callable[[Document], None], message: str) -> None:
    document = copy.deepcopy(DESIGN_EXAMPLE)
    mutate(document)
    with pytest.raises(ValidationError, match=message):
        SopDefinition.model_validate(document)


def test_design_example_is_valid() -> None:
    sop = SopDefinition.model_validate(DESIGN_EXAMPLE)
    assert sop.model_dump(mode="json", exclude_unset=True) == DESIGN_EXAMPLE


@pytest.mark.parametrize(
    "limits",
    [{"min": 0}, {"max": 5}, {"min": -40.5, "max": -40.5}],
    ids=["min only", "max only", "min equals max"],
)
def test_measurement_needs_only_one_limit(limits: Document) -> None:
    document = copy.deepcopy(DESIGN_EXAMPLE)
    check = document["steps"][0]["checks"][1]
    del check["min"], check["max"]
    check.update(limits)
    SopDefinition.model_validate(document)


def test_limits_at_the_boundaries_are_accepted() -> None:
    document = copy.deepcopy(DESIGN_EXAMPLE)
    document["id"] = "a" * 64
    document["title"] = "t" * 200
    document["description"] = "d" * 5000
    document["steps"] = [
        step(f"s{i}", *(confirm(f"c{i}-{j}") for j in range(5))) for i in range(100)
    ]
    sop = SopDefinition.model_validate(document)
    assert sum(len(s.checks) for s in sop.steps) == 500


def test_example_sops_are_valid_and_mix_check_kinds() -> None:
    for sop in EXAMPLE_SOPS:
        checks = [check for s in sop.steps for check in s.checks]
        assert {check.kind for check in checks} == {"confirm", "measurement"}
        assert {check.required for check in checks} == {True, False}
        SopDefinition.model_validate(sop.model_dump())
