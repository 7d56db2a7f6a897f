"""Which session a start with an Idempotency-Key named, so that its repeats get that session."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.db import insert_statement
from store.models import SessionStartKeyRow


def _digest(*parts: str) -> str:
    # NUL cannot occur in a caller id or a header value, so the parts cannot run together.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class StartKeyClaim:
    """The session a key names, and whether the request is the one that first used the key."""

    session_id: str
    same_request: bool


class SessionStartKeys:
    """Keys of `POST /sessions`, each naming the one session its first request chose."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim(
        self, caller_id: str, key: str, request: str, proposed_session_id: str
    ) -> StartKeyClaim:
        """Names `proposed_session_id` for the key unless a request already named another.

        `request` is the request body in a canonical form: the same key with
        another body is not the same request.
        """
        key_digest = _digest(caller_id, key)
        request_digest = _digest(request)
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            # A new key, the common case, costs one statement: the row comes back only if
            # this insert made it.
            inserted = await session.scalar(
                insert_statement(dialect, SessionStartKeyRow)
                .values(
                    key_digest=key_digest,
                    request_digest=request_digest,
                    session_id=proposed_session_id,
                )
                .on_conflict_do_nothing(index_elements=["key_digest"])
                .returning(SessionStartKeyRow.session_id)
            )
            if inserted is not None:
                await session.commit()
                return StartKeyClaim(inserted, same_request=True)
            row = await session.get_one(SessionStartKeyRow, key_digest)
            await session.commit()
        return StartKeyClaim(row.session_id, row.request_digest == request_digest)
