"""The README as a newcomer meets it: two commands first, a walk-through that runs, sound links."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.processes import ROOT, free_port
from tests.ops.test_embedded import PORTS, Launcher

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# The two set-up commands, exactly as a newcomer copies them from the first screen.
FIRST_SCREEN_COMMANDS = (
    "make run    # installs into .venv and starts Temporal, the worker and the API "
    "(http://localhost:8000)",
    "make test   # installs and runs every test, lint and type check included",
)
FIRST_SCREEN_LINES = 30
FRONT_DOOR_LINES = 250
# Any answer that is not a 2xx stops the walk-through; each answer ends its own line.
STRICT_CURL = (
    'set -euo pipefail\ncurl() { command curl --fail-with-body --show-error "$@"; echo; }\n'
)


_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)


def _prose(markdown: str) -> str:
    """The text outside code blocks and inline code, where links live."""
    return _INLINE_CODE.sub("", _FENCE.sub("", markdown))


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings (`## Who can reach \\`make run\\``)."""
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, number = slug, 0
        while candidate in found:
            number += 1
            candidate = f"{slug}-{number}"
        found.add(candidate)
    return found


def broken_links(document: Path) -> list[str]:
    """The relative links of a document whose file or heading does not exist."""
    broken = []
    for target in _LINK.findall(_prose(document.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    return broken


def walk_through() -> str:
    """The README's walk-through: the first shell block after its heading."""
    section = README.read_text().split("\n## Walk-through\n", 1)[1]
    block = re.search(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block, "the walk-through has no shell block"
    return block[1]


def test_the_first_screen_gives_the_two_commands_and_the_readme_stays_short() -> None:
    lines = README.read_text().splitlines()
    first_screen = lines[:FIRST_SCREEN_LINES]
    for command in FIRST_SCREEN_COMMANDS:
        assert command in first_screen, command
    assert len(lines) <= FRONT_DOOR_LINES


def test_anchors_follow_github_headings() -> None:
    markdown = "# Work sessions\n## Who can reach `make run`\n## Compose (`.env`)\n## Logs\n## Logs"
    assert anchors(markdown) == {
        "work-sessions",
        "who-can-reach-make-run",
        "compose-env",
        "logs",
        "logs-1",
    }


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda path: path.name)
def test_every_relative_link_leads_to_a_file_and_heading(document: Path) -> None:
    assert broken_links(document) == []


@pytest.mark.slow
async def test_the_readme_walk_through_runs_against_make_run(tmp_path: Path) -> None:
    ports = {name: free_port() for name in PORTS}
    launcher = Launcher(tmp_path, ports)
    try:
        await launcher.banner()
        script = walk_through().replace("http://localhost:8000", launcher.api)
        script = script.replace(".venv/bin/python", sys.executable)
        env = {key: value for key, value in os.environ.items() if key != "AUTH_JWT_SECRET"}
        ran = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", STRICT_CURL + script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        await asyncio.to_thread(launcher.stop)
    assert ran.returncode == 0, f"{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    said = ran.stdout
    for shown in ('"status":"PAUSED"', '"status":"ABORTED"', '"abort_reason":"wrong press"'):
        assert shown in said, shown
    assert "session_id,seq,type,at,actor" in said
    assert ",session_aborted," in said
