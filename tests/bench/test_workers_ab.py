"""Two workers' code on one stack: each side's load reaches its own worker."""

from __future__ import annotations

from bench.workers_ab import THIS_TREE, compare, parse_args

SHORT = [str(THIS_TREE), "--rounds", "1", "--window", "2", "--virtual-workers", "4"]


async def test_each_side_of_the_closed_load_is_served_by_its_own_worker() -> None:
    sides = await compare(parse_args(SHORT))

    for side, idle in (("this", "other"), ("other", "this")):
        assert sides[side].stats()["all"].count > 0, side
        cpu = sides[side].cpu_ms_per_op()
        # That side's worker served its load; the other one sat idle meanwhile.
        assert cpu[side] > 2 * cpu[idle], cpu
        assert cpu["temporal"] > 0


async def test_the_open_load_reaches_both_sides() -> None:
    # Enough virtual workers, each thinking 4 s on average, that neither side's 4 s
    # can pass without an operation.
    sides = await compare(parse_args([*SHORT, "--virtual-workers", "40", "--open"]))

    assert sorted(sides) == ["other", "this"]
    assert all(side.stats()["all"].count > 0 for side in sides.values())
