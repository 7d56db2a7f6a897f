"""Idempotency-Keys of session starts: one key, one session, one request body."""

import asyncio

import pytest

from store.start_keys import SessionStartKeys

pytestmark = pytest.mark.asyncio

BODY = '{"sop_id": "loto-press-7", "sop_version": null}'
OTHER_BODY = '{"sop_id": "forklift-preshift", "sop_version": null}'


async def test_the_first_start_names_its_session_and_repeats_get_it(
    start_keys: SessionStartKeys,
) -> None:
    first = await start_keys.claim("alice", "key-1", BODY, "alice.loto-press-7.a")
    repeat = await start_keys.claim("alice", "key-1", BODY, "alice.loto-press-7.b")

    assert first.session_id == repeat.session_id == "alice.loto-press-7.a"
    assert first.same_request and repeat.same_request


async def test_the_same_key_with_another_body_is_not_the_same_request(
    start_keys: SessionStartKeys,
) -> None:
    await start_keys.claim("alice", "key-1", BODY, "alice.loto-press-7.a")
    other = await start_keys.claim("alice", "key-1", OTHER_BODY, "alice.forklift-preshift.c")

    assert not other.same_request
    assert other.session_id == "alice.loto-press-7.a"


async def test_each_caller_has_keys_of_their_own(start_keys: SessionStartKeys) -> None:
    alice = await start_keys.claim("alice", "key-1", BODY, "alice.loto-press-7.a")
    bob = await start_keys.claim("bob", "key-1", BODY, "bob.loto-press-7.b")
    # The parts are kept apart: ("ab", "c") is not ("a", "bc").
    split = await start_keys.claim("alicek", "ey-1", BODY, "alicek.loto-press-7.c")

    assert (alice.session_id, bob.session_id, split.session_id) == (
        "alice.loto-press-7.a",
        "bob.loto-press-7.b",
        "alicek.loto-press-7.c",
    )


async def test_concurrent_first_requests_agree_on_one_session(
    start_keys: SessionStartKeys,
) -> None:
    claims = await asyncio.gather(
        *(start_keys.claim("alice", "key-1", BODY, f"alice.loto-press-7.{n}") for n in range(8))
    )

    assert len({claim.session_id for claim in claims}) == 1
    assert all(claim.same_request for claim in claims)
