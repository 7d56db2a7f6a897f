"""Temporal's errors as the contract's problems, in one place.

A refusal of the domain keeps its code; a session the engine does not know is
404; anything else from the engine is the engine's, never the caller's: 503
with `Retry-After`, saying whether the change may still have been applied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ProblemCode, ProblemError
from engine.client import NotConnected
from workflows.domain import RefusalCode

log = logging.getLogger(__name__)

# The codes the workflow refuses with; any other failure from the engine is not the caller's.
_REFUSAL_CODES = frozenset(code.value for code in RefusalCode)


def unavailable(err: BaseException, *, maybe_applied: bool = False) -> ProblemError:
    """The engine did not answer: 503, saying whether the change may still land."""
    log.warning("temporal unavailable: %s", err)
    detail = (
        "The workflow engine did not confirm the change in time; it may still be applied. "
        "Read the session, or retry with the same Idempotency-Key."
        if maybe_applied
        else "The workflow engine cannot be reached right now. Retry shortly."
    )
    return ProblemError(ProblemCode.TEMPORAL_UNAVAILABLE, detail, headers={"Retry-After": "2"})


def refusal(err: WorkflowUpdateFailedError) -> ProblemError:
    """The domain's refusal of an update; a failure type the API does not know is no 4xx."""
    cause = err.cause
    if not isinstance(cause, ApplicationError):
        return unavailable(err)
    code = ProblemCode.known(cause.type) if cause.type in _REFUSAL_CODES else None
    if code is None:
        return unavailable(err)
    details = cause.details[0] if cause.details else {}
    return ProblemError(code, cause.message, extra=details if isinstance(details, dict) else {})


def session_not_found() -> ProblemError:
    """No such session, or not one the caller may know of."""
    return ProblemError(ProblemCode.SESSION_NOT_FOUND, "No such session.")


def suspended() -> ProblemError:
    """An operator paused the session's workflow in Temporal."""
    return ProblemError(
        ProblemCode.SESSION_SUSPENDED,
        "An operator has suspended this session's workflow in Temporal; "
        "it can be read and changed again once they unpause it.",
    )


@contextmanager
def engine_problems(
    *,
    maybe_applied: bool = False,
    names_a_session: bool = True,
    invalid_argument: ProblemError | None = None,
) -> Iterator[None]:
    """Raises the problem for any engine error met inside.

    `maybe_applied`: the calls inside change something, so an unanswered call may
    still land. `names_a_session`: the calls address one session, so NOT_FOUND
    and INVALID_ARGUMENT mean an id the engine does not know. `invalid_argument`:
    what INVALID_ARGUMENT means otherwise.
    """
    try:
        yield
    except WorkflowUpdateFailedError as err:
        raise refusal(err) from err
    except RPCError as err:
        unknown_id = (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT)
        if names_a_session and err.status in unknown_id:
            raise session_not_found() from err
        if invalid_argument is not None and err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise invalid_argument from err
        raise unavailable(err, maybe_applied=maybe_applied) from err
    except RPCTimeoutOrCancelledError as err:
        raise unavailable(err, maybe_applied=maybe_applied) from err
    except (WorkflowQueryFailedError, NotConnected) as err:
        raise unavailable(err) from err
