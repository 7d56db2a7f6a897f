"""Publishing, reading and listing SOP versions, and the example seed."""

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import sops
from store.db import create_engine, create_transaction_factory
from store.seed import EXAMPLE_SOPS, seed_examples
from store.sops import SopCatalog, SopDefinition, SopListItem
from workflows.shared import CheckDefinition, CheckKind, SopSnapshot, StepDefinition

pytestmark = pytest.mark.asyncio

# Enough concurrent publishes that a read of the latest version outside the insert's
# lock hands two of them the same number more often than retries can absorb.
PUBLISHES = 40


def definition(sop_id: str, title: str, steps: int = 1, checks_per_step: int = 1) -> SopDefinition:
    return SopDefinition.model_validate(
        {
            "id": sop_id,
            "title": title,
            "steps": [
                {
                    "id": f"step-{i}",
                    "title": f"Step {i}",
                    "checks": [
                        {"id": f"check-{i}-{j}", "prompt": f"Check {i}.{j}", "kind": "confirm"}
                        for j in range(checks_per_step)
                    ],
                }
                for i in range(steps)
            ],
        }
    )


async def test_first_publish_is_version_1_with_publisher_and_aware_time(
    sop_catalog: SopCatalog,
) -> None:
    before = datetime.now(UTC)
    published = await sop_catalog.publish(EXAMPLE_SOPS[0], "supervisor-1")
    assert published.version == 1
    assert published.published_by == "supervisor-1"
    assert published.published_at.tzinfo is not None
    assert published.published_at.utcoffset() == timedelta(0)
    assert before <= published.published_at <= datetime.now(UTC)
    assert (
        SopDefinition.model_validate(
            published.model_dump(exclude={"version", "published_at", "published_by"})
        )
        == EXAMPLE_SOPS[0]
    )


async def test_publish_increments_and_older_versions_stay_unchanged(
    sop_catalog: SopCatalog,
) -> None:
    first = await sop_catalog.publish(definition("pump-check", "Pump check"), "alice")
    second = await sop_catalog.publish(definition("pump-check", "Pump check v2", steps=2), "bob")
    assert (first.version, second.version) == (1, 2)
    assert await sop_catalog.get("pump-check", version=1) == first
    assert await sop_catalog.get("pump-check", version=2) == second
    assert await sop_catalog.get("pump-check") == second
    stored = await sop_catalog.get("pump-check", version=1)
    assert stored is not None and stored.published_at.tzinfo is not None


async def test_unknown_sop_or_version_is_none(sop_catalog: SopCatalog) -> None:
    await sop_catalog.publish(definition("pump-check", "Pump check"), "alice")
    assert await sop_catalog.get("no-such-sop") is None
    assert await sop_catalog.get("pump-check", version=2) is None


async def test_list_shows_latest_versions_by_title_with_counts(sop_catalog: SopCatalog) -> None:
    await sop_catalog.publish(definition("zeta", "Zeta procedure"), "alice")
    await sop_catalog.publish(definition("alpha", "Old title sorted last"), "alice")
    await sop_catalog.publish(
        definition("alpha", "Alpha procedure", steps=3, checks_per_step=2), "alice"
    )
    await sop_catalog.publish(definition("mid", "Mid procedure", steps=2), "alice")
    assert await sop_catalog.list_latest() == [
        SopListItem(id="alpha", version=2, title="Alpha procedure", step_count=3, check_count=6),
        SopListItem(id="mid", version=1, title="Mid procedure", step_count=2, check_count=2),
        SopListItem(id="zeta", version=1, title="Zeta procedure", step_count=1, check_count=1),
    ]


async def test_list_of_an_empty_catalog_is_empty(sop_catalog: SopCatalog) -> None:
    assert await sop_catalog.list_latest() == []


async def test_concurrent_publishes_all_succeed_with_distinct_versions(
    sop_catalog: SopCatalog,
) -> None:
    sop = definition("race", "Race")
    published = await asyncio.gather(*(sop_catalog.publish(sop, f"user-{i}") for i in range(4)))
    assert sorted(p.version for p in published) == [1, 2, 3, 4]
    latest = await sop_catalog.get("race")
    assert latest is not None and latest.version == 4


async def test_concurrent_publishes_from_several_processes_get_consecutive_versions(
    database_url: str,
) -> None:
    # Each engine stands for a process of its own (API replicas, worker) sharing the database.
    engines = [create_engine(database_url) for _ in range(3)]
    catalogs = [SopCatalog(create_transaction_factory(engine)) for engine in engines]
    sop = definition("race", "Race")
    try:
        published = await asyncio.gather(
            *(catalogs[i % len(catalogs)].publish(sop, f"user-{i}") for i in range(PUBLISHES))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(p.version for p in published) == list(range(1, PUBLISHES + 1))
    latest = await catalogs[0].get("race")
    assert latest is not None and latest.version == PUBLISHES


async def test_a_latest_version_read_a_while_ago_answers_at_once_and_is_read_again_beside(
    sop_catalog: SopCatalog,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sops, "LATEST_SOP_FRESH_SECONDS", 2.0)
    monkeypatch.setattr(sops, "LATEST_SOP_REFRESH_SECONDS", 0.2)
    # Another process (an API replica) publishes version 2 after this one read version 1.
    replica = SopCatalog(session_factory)
    await replica.publish(definition("pump-check", "Pump check"), "alice")
    first = await sop_catalog.get("pump-check")
    await replica.publish(definition("pump-check", "Pump check v2"), "bob")
    await asyncio.sleep(0.3)
    answered = await sop_catalog.get("pump-check")
    assert answered == first, "the version known, without waiting for the database"
    versions = []
    for _ in range(100):
        latest = await sop_catalog.get("pump-check")
        versions.append(latest.version if latest else None)
        if versions[-1] == 2:
            break
        await asyncio.sleep(0.01)
    assert versions[-1] == 2, "read again beside, well within the freshness bound"
    await sop_catalog.close()


async def test_a_publish_here_is_the_latest_at_once_whatever_read_was_under_way(
    sop_catalog: SopCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sops, "LATEST_SOP_REFRESH_SECONDS", 0.0)
    await sop_catalog.publish(definition("pump-check", "Pump check"), "alice")
    await sop_catalog.get("pump-check")
    # Version 1 is known and due for a read beside: one begins, then version 2 is published.
    await sop_catalog.get("pump-check")
    published = await sop_catalog.publish(definition("pump-check", "Pump check v2"), "bob")
    for _ in range(5):
        assert await sop_catalog.get("pump-check") == published
        await asyncio.sleep(0.02)
    await sop_catalog.close()


async def test_snapshot_carries_the_whole_definition(sop_catalog: SopCatalog) -> None:
    published = await sop_catalog.publish(EXAMPLE_SOPS[1], "alice")
    snapshot = published.to_snapshot()
    assert isinstance(snapshot, SopSnapshot)
    assert (snapshot.id, snapshot.version, snapshot.title) == (
        "confined-space-entry",
        1,
        "Confined Space Entry: Tank T-12",
    )
    atmosphere = next(step for step in snapshot.steps if step.id == "atmosphere")
    assert isinstance(atmosphere, StepDefinition)
    assert (
        CheckDefinition(
            id="o2",
            prompt="Oxygen",
            kind=CheckKind.MEASUREMENT,
            required=True,
            unit="%",
            min=19.5,
            max=23.5,
        )
        in atmosphere.checks
    )
    assert sum(len(step.checks) for step in snapshot.steps) == sum(
        len(step.checks) for step in published.steps
    )


async def test_seed_adds_the_examples_once(sop_catalog: SopCatalog) -> None:
    assert await seed_examples(sop_catalog) == [
        "loto-press-7",
        "confined-space-entry",
        "forklift-preshift",
    ]
    assert await seed_examples(sop_catalog) == []
    listed = await sop_catalog.list_latest()
    assert [(item.title, item.version) for item in listed] == [
        ("Confined Space Entry: Tank T-12", 1),
        ("Forklift Pre-Shift Inspection", 1),
        ("Lockout/Tagout: Press 7", 1),
    ]


async def test_concurrent_seeds_add_each_example_once(sop_catalog: SopCatalog) -> None:
    first, second = await asyncio.gather(seed_examples(sop_catalog), seed_examples(sop_catalog))
    assert sorted(first + second) == sorted(sop.id for sop in EXAMPLE_SOPS)
    assert {item.version for item in await sop_catalog.list_latest()} == {1}


async def test_publish_if_new_never_adds_a_version(sop_catalog: SopCatalog) -> None:
    first = await sop_catalog.publish_if_new(definition("pump", "Pump"), "alice")
    assert first is not None and first.version == 1
    assert await sop_catalog.publish_if_new(definition("pump", "Pump v2"), "bob") is None
    assert await sop_catalog.get("pump") == first


async def test_seed_leaves_an_existing_sop_alone(sop_catalog: SopCatalog) -> None:
    custom = definition("loto-press-7", "Our own press 7 procedure")
    await sop_catalog.publish(custom, "alice")
    assert await seed_examples(sop_catalog) == ["confined-space-entry", "forklift-preshift"]
    latest = await sop_catalog.get("loto-press-7")
    assert latest is not None and (latest.version, latest.title) == (1, "Our own press 7 procedure")


async def _run_cli(database_url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "store",
        "migrate",
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_cli_migrates_and_seeds_then_does_nothing_more(blank_database_url: str) -> None:
    first = await _run_cli(blank_database_url)
    assert first[0] == 0, first
    assert (
        first[1]
        .strip()
        .endswith(
            "to head; example SOPs added: loto-press-7, confined-space-entry, forklift-preshift"
        )
    )
    second = await _run_cli(blank_database_url)
    assert second[0] == 0, second
    assert second[1].strip().endswith("to head; example SOPs added: none")


async def test_cli_fails_when_the_database_is_unreachable() -> None:
    code, stdout, _ = await _run_cli("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    assert code != 0
    assert stdout == ""
