"""Answers that pass every check of an SOP: what a diligent worker sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflows.shared import CheckKind, SopSnapshot


@dataclass(frozen=True)
class Answer:
    """An answer to one check: `passed` for a confirmation, `value` for a measurement."""

    check_id: str
    passed: bool | None
    value: float | None

    def body(self) -> dict[str, Any]:
        """The answer as the body of `POST /sessions/{id}/checks`."""
        body: dict[str, Any] = {"check_id": self.check_id}
        if self.passed is not None:
            body["passed"] = self.passed
        if self.value is not None:
            body["value"] = self.value
        return body


def passing_answers(sop: SopSnapshot) -> list[Answer]:
    """One passing answer per check, in SOP order: `passed` for confirms, an in-range value."""
    answers = []
    for step in sop.steps:
        for check in step.checks:
            if check.kind == CheckKind.CONFIRM:
                answers.append(Answer(check.id, True, None))
                continue
            low = check.min if check.min is not None else (check.max or 0.0) - 1
            high = check.max if check.max is not None else low + 2
            answers.append(Answer(check.id, None, (low + high) / 2))
    return answers
