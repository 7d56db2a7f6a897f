"""What payload encryption costs: worker and API CPU per operation with it off and on.

Two private stacks, alike but for PAYLOAD_ENCRYPTION_KEYS, take the same REST
lifecycle load in A-B-B-A order; each side's CPU is read from its own stack's
processes. The codec's own CPU per payload, free of the machine's load, is timed too.
"""

from __future__ import annotations

import base64
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import SecretStr

from bench.drivers import Driver, RestDriver
from bench.http import HttpClient
from bench.lifecycle import Side
from bench.report import Target, cpu_line, kind_table
from bench.stack import BenchStack, start_stack
from bench.stats import OpStats
from devstack.answers import passing_answers
from engine.client import DATA_CONVERTER
from engine.codec import EncryptionCodec
from runtime.settings import Settings
from workflows.shared import Actor, RecordCheckRequest, SopSnapshot, StartSessionInput

# The processes the codec runs in.
CODEC_PROCESSES = ("worker", "api")
# Encryptions and decryptions timed per payload for the codec's own cost.
CODEC_ROUNDS = 2000
# The lifecycle targets, stated at this many virtual workers, hold with encryption on too.
TARGET_VIRTUAL_WORKERS = 20
BOUNDED_KINDS = ("pause", "resume", "check")
SIDES = ("off", "on")


@dataclass(frozen=True)
class CodecCost:
    """The codec alone on one kind of payload."""

    payload_bytes: int
    encrypt_and_decrypt_us: float


@dataclass
class EncryptionResult:
    """The same closed lifecycle load with payload encryption off and on, and the codec alone."""

    key: ClassVar[str] = "encryption"

    virtual_workers: int
    seconds_per_side: float
    stats: dict[str, dict[str, OpStats]]
    cpu_ms_per_op: dict[str, dict[str, float]]
    codec: dict[str, CodecCost]

    @property
    def cpu_ratio(self) -> float:
        """Worker plus API CPU per operation, encryption on over off."""
        on, off = (
            sum(self.cpu_ms_per_op[side][name] for name in CODEC_PROCESSES)
            for side in ("on", "off")
        )
        return on / off

    @property
    def control_ratio(self) -> float:
        """The load generator's own CPU per operation, on over off.

        It does the same work on both sides: how far the machine alone moved the figures.
        """
        return self.cpu_ms_per_op["on"]["bench"] / self.cpu_ms_per_op["off"]["bench"]

    def section(self) -> dict[str, Any]:
        """Per-kind stats and CPU per operation of both sides, the ratio, the codec alone."""
        return {
            "virtual_workers": self.virtual_workers,
            "seconds_per_side": self.seconds_per_side,
            "stats": {
                side: {kind: asdict(s) for kind, s in by_kind.items()}
                for side, by_kind in self.stats.items()
            },
            "cpu_ms_per_op": self.cpu_ms_per_op,
            "encryption_cpu_ratio": self.cpu_ratio,
            "control_cpu_ratio": self.control_ratio,
            "codec": {name: asdict(cost) for name, cost in self.codec.items()},
        }

    def headline(self) -> dict[str, Any]:
        """`encryption_cpu_ratio`."""
        return {"encryption_cpu_ratio": self.cpu_ratio}

    def targets(self) -> list[Target]:
        """The lifecycle's p99 targets, with encryption on."""
        note = (
            ""
            if self.virtual_workers == TARGET_VIRTUAL_WORKERS
            else f"measured at {self.virtual_workers} virtual workers, "
            f"target at {TARGET_VIRTUAL_WORKERS}"
        )
        on = self.stats["on"]
        return [
            Target(
                f"{kind} p99, encryption on",
                on[kind].p99_ms if kind in on else math.nan,
                100,
                True,
                " ms",
                note,
            )
            for kind in BOUNDED_KINDS
        ]

    def report(self) -> list[str]:
        """The per-kind table of both sides, CPU per operation, the codec alone, the ratio."""
        lines = ["Payload encryption, the same lifecycle load off and on:"]
        lines += kind_table({f"enc {side}": self.stats[side] for side in SIDES})
        lines += [cpu_line(f"encryption {side}", self.cpu_ms_per_op[side]) for side in SIDES]
        for name, cost in self.codec.items():
            lines.append(
                f"  codec alone, {name} ({cost.payload_bytes} bytes): "
                f"{cost.encrypt_and_decrypt_us:.0f} µs CPU to encrypt and decrypt"
            )
        lines.append(
            f"encryption_cpu_ratio (worker + API CPU per operation, on/off): {self.cpu_ratio:.2f}× "
            f"(the load generator's own, which encryption does not touch: "
            f"{self.control_ratio:.2f}×)"
        )
        return lines


def _new_key() -> SecretStr:
    return SecretStr(f"bench:{base64.b64encode(os.urandom(32)).decode()}")


async def codec_cost(sop: SopSnapshot) -> dict[str, CodecCost]:
    """CPU to encrypt and decrypt a session's start input and a check record, per payload."""
    codec = EncryptionCodec(Settings(payload_encryption_keys=_new_key()).encryption_keys())
    actor = Actor(user_id="enc-000", roles=["worker"])
    samples: dict[str, object] = {
        "start input": StartSessionInput(
            session_id=str(uuid.uuid4()), worker_id="enc-000", sop=sop
        ),
        "check record": RecordCheckRequest(actor, "residual-v", None, 2.5, "meter M-12", "k-1"),
    }
    found = {}
    for name, value in samples.items():
        [payload] = await DATA_CONVERTER.encode([value])
        began = time.process_time()
        for _ in range(CODEC_ROUNDS):
            await codec.decode(await codec.encode([payload]))
        spent = time.process_time() - began
        found[name] = CodecCost(payload.ByteSize(), spent / CODEC_ROUNDS * 1e6)
    return found


def _drivers(stack: BenchStack, http: HttpClient, users: list[str]) -> list[Driver]:
    return [RestDriver(http, stack.token(user)) for user in users]


async def measure_encryption(
    *,
    virtual_workers: int,
    seconds: float,
    warmup: float,
    worker_cache: int | None,
    first_port: int | None,
    say: Callable[[str], None],
) -> EncryptionResult:
    """Runs the lifecycle load against an unencrypted and an encrypted stack, A-B-B-A.

    With `first_port`, the two stacks take the four ports after the main stack's two.
    """
    ports = (None, None) if first_port is None else (first_port + 2, first_port + 4)
    with tempfile.TemporaryDirectory(prefix="bench-encryption-") as tmp:
        plain_dir, encrypted_dir = Path(tmp, "off"), Path(tmp, "on")
        plain_dir.mkdir()
        encrypted_dir.mkdir()
        plain, sop = await start_stack(plain_dir, worker_cache, ports[0])
        try:
            encrypted, _ = await start_stack(encrypted_dir, worker_cache, ports[1], _new_key())
        except BaseException:
            plain.stop()
            raise
        try:
            sides = await _a_b_b_a(
                plain, encrypted, sop.to_snapshot(), virtual_workers, seconds, warmup, say
            )
        except BaseException:
            say(plain.stack.log_tails())
            say(encrypted.stack.log_tails())
            raise
        finally:
            encrypted.stop()
            plain.stop()
    for side_name, side in sides.items():
        for example in side.recorder.error_examples:
            say(f"  error (encryption {side_name}): {example}")
    return EncryptionResult(
        virtual_workers=virtual_workers,
        seconds_per_side=seconds,
        stats={name: side.stats() for name, side in sides.items()},
        cpu_ms_per_op={name: side.cpu_ms_per_op() for name, side in sides.items()},
        codec=await codec_cost(sop.to_snapshot()),
    )


async def _a_b_b_a(
    plain: BenchStack,
    encrypted: BenchStack,
    sop: SopSnapshot,
    virtual_workers: int,
    seconds: float,
    warmup: float,
    say: Callable[[str], None],
) -> dict[str, Side]:
    answers = passing_answers(sop)
    users = [f"enc-{i:03d}" for i in range(virtual_workers)]
    connections = 2 * virtual_workers
    async with (
        HttpClient(plain.api_url, connections) as off_http,
        HttpClient(encrypted.api_url, connections) as on_http,
    ):
        load = {
            "off": (_drivers(plain, off_http, users), plain.cpu_seconds),
            "on": (_drivers(encrypted, on_http, users), encrypted.cpu_seconds),
        }
        for drivers, cpu in load.values():
            await Side().run(drivers, answers, warmup, cpu)
        sides = {name: Side() for name in SIDES}
        for name in ("off", "on", "on", "off"):
            say(f"  encryption {name:<3} {seconds / 2:.0f} s ...")
            drivers, cpu = load[name]
            await sides[name].run(drivers, answers, seconds / 2, cpu)
    return sides
