"""What payload encryption costs: worker and API CPU per operation with it off and on.

Two private stacks alike but for PAYLOAD_ENCRYPTION_KEYS run the same REST lifecycle
load in A-B-B-A order; each side's CPU is read from its own stack's processes.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from bench.drivers import Driver, RestDriver
from bench.lifecycle import Side
from bench.report import Target
from bench.stack import BenchStack, start_stack
from devstack.answers import passing_answers
from engine.client import DATA_CONVERTER
from engine.codec import EncryptionCodec
from runtime.settings import Settings
from workflows.shared import Actor, RecordCheckRequest, SopSnapshot, StartSessionInput

# The processes whose work encryption adds to: the codec runs in the API and the worker.
CODEC_PROCESSES = ("worker", "api")


# Encryptions and decryptions timed per payload for the codec's own cost.
CODEC_ROUNDS = 2000


async def codec_cost(sop: SopSnapshot) -> dict[str, dict[str, float]]:
    """CPU microseconds to encrypt and decrypt a session's start input and a check record.

    Free of the machine's load, unlike the CPU per operation of whole processes.
    """
    codec = EncryptionCodec(Settings(payload_encryption_keys=_new_key()).encryption_keys())
    actor = Actor(user_id="enc-000", roles=["worker"])
    samples = {
        "start_input": StartSessionInput(
            session_id=str(uuid.uuid4()), worker_id="enc-000", sop=sop
        ),
        "check_record": RecordCheckRequest(actor, "residual-v", None, 2.5, "meter M-12", "k-1"),
    }
    found = {}
    for name, value in samples.items():
        [payload] = await DATA_CONVERTER.encode([value])
        began = time.process_time()
        for _ in range(CODEC_ROUNDS):
            await codec.decode(await codec.encode([payload]))
        spent = time.process_time() - began
        found[name] = {
            "bytes": payload.ByteSize(),
            "encrypt_and_decrypt_us": spent / CODEC_ROUNDS * 1e6,
        }
    return found


def _new_key() -> SecretStr:
    return SecretStr(f"bench:{base64.b64encode(os.urandom(32)).decode()}")


def _drivers(stack: BenchStack, http: httpx.AsyncClient, users: list[str]) -> list[Driver]:
    return [RestDriver(http, stack.token(user)) for user in users]


def _codec_cpu_ms(side: Side) -> float:
    per_op = side.cpu_ms_per_op()
    return sum(per_op[name] for name in CODEC_PROCESSES)


async def encryption_cost(
    data_dir: Path,
    *,
    virtual_workers: int,
    seconds: float,
    warmup: float,
    worker_cache: int | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Runs the lifecycle load against an unencrypted and an encrypted stack, A-B-B-A."""
    key = _new_key()
    (data_dir / "plain").mkdir()
    (data_dir / "encrypted").mkdir()
    plain, sop = await start_stack(data_dir / "plain", worker_cache, None)
    try:
        encrypted, _ = await start_stack(data_dir / "encrypted", worker_cache, None, key)
    except BaseException:
        plain.stop()
        raise
    answers = passing_answers(sop.to_snapshot())
    users = [f"enc-{i:03d}" for i in range(virtual_workers)]
    limits = httpx.Limits(max_connections=2 * virtual_workers)
    try:
        async with (
            httpx.AsyncClient(base_url=plain.api_url, limits=limits, timeout=60) as off_http,
            httpx.AsyncClient(base_url=encrypted.api_url, limits=limits, timeout=60) as on_http,
        ):
            sides = {
                "off": (Side(), _drivers(plain, off_http, users), plain.cpu_seconds),
                "on": (Side(), _drivers(encrypted, on_http, users), encrypted.cpu_seconds),
            }
            for _side, drivers, cpu in sides.values():
                await Side().run(drivers, answers, warmup, cpu)
            for name in ("off", "on", "on", "off"):
                side, drivers, cpu = sides[name]
                say(f"  encryption {name:<3} {seconds / 2:.0f} s ...")
                await side.run(drivers, answers, seconds / 2, cpu)
    finally:
        encrypted.stop()
        plain.stop()
    off, on = sides["off"][0], sides["on"][0]
    for name, side in (("off", off), ("on", on)):
        for example in side.recorder.error_examples:
            say(f"  error (encryption {name}): {example}")
    return {
        "virtual_workers": virtual_workers,
        "seconds_per_side": seconds,
        "cpu_ms_per_op": {"off": off.cpu_ms_per_op(), "on": on.cpu_ms_per_op()},
        "ops_per_s": {"off": off.stats()["all"].ops_per_s, "on": on.stats()["all"].ops_per_s},
        "stats": {
            name: {k: asdict(v) for k, v in side.stats().items()}
            for name, side in (("off", off), ("on", on))
        },
        "encryption_cpu_ratio": _codec_cpu_ms(on) / _codec_cpu_ms(off),
        "codec": await codec_cost(sop.to_snapshot()),
    }


def report_lines(cost: dict[str, Any]) -> list[str]:
    """The figures as `make bench` prints them."""
    lines = []
    for name in ("off", "on"):
        per_op = cost["cpu_ms_per_op"][name]
        spent = ", ".join(f"{process} {ms:.2f}" for process, ms in per_op.items())
        p99 = cost["stats"][name]["all"]["p99_ms"]
        lines.append(
            f"  encryption {name:<3}: {cost['ops_per_s'][name]:.0f} ops/s, p99 {p99:.0f} ms; "
            f"CPU ms per operation: {spent}"
        )
    for name, figures in cost["codec"].items():
        lines.append(
            f"  codec alone, {name} ({figures['bytes']} bytes): "
            f"{figures['encrypt_and_decrypt_us']:.0f} µs CPU to encrypt and decrypt"
        )
    lines.append(
        f"  encryption_cpu_ratio (worker + API CPU per operation, on/off): "
        f"{cost['encryption_cpu_ratio']:.2f}×"
    )
    return lines


@dataclass
class EncryptionResult:
    """The lifecycle load with payload encryption off and on, and the codec's own cost."""

    key: ClassVar[str] = "encryption"
    cost: dict[str, Any]

    def section(self) -> dict[str, Any]:
        """The figures as the results document holds them."""
        return self.cost

    def headline(self) -> dict[str, Any]:
        """The ratio lifted to the top of the results document."""
        return {"encryption_cpu_ratio": self.cost["encryption_cpu_ratio"]}

    def targets(self) -> list[Target]:
        """None: the cost is reported, and the lifecycle goals are checked on their own."""
        return []

    def report(self) -> list[str]:
        """Lines for the printed summary."""
        return ["Payload encryption, the same load off and on:", *report_lines(self.cost)]
