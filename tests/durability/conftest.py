"""A fresh stack of real processes for every crash test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.durability.stack import LiveStack, running_stack


@pytest.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[LiveStack]:
    async with running_stack(tmp_path) as running:
        failed_before = request.session.testsfailed
        yield running
        if request.session.testsfailed > failed_before:
            print(running.log_tails())
