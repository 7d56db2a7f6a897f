"""Which engine errors mean an update was not applied and may be sent again."""

from __future__ import annotations

from google.protobuf.any_pb2 import Any as AnyDetail
from google.protobuf.message import Message
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import (
    ResourceExhaustedFailure,
    WorkflowNotReadyFailure,
)
from temporalio.service import RPCError, RPCStatusCode

from engine.sessions import dropped_with_its_workflow_task


def rpc_error(status: RPCStatusCode, detail: Message) -> RPCError:
    """An error as the SDK raises it from the server's answer, details included."""
    packed = AnyDetail()
    packed.Pack(detail)
    grpc_status = GrpcStatus(code=int(status), message="from the server", details=[packed])
    return RPCError("from the server", status, grpc_status.SerializeToString())


def test_an_update_dropped_with_a_failed_workflow_task_is_sent_again() -> None:
    # What the server answers when the workflow task carrying the update failed
    # (`UnhandledCommand`: the task closed the run while a timer fired).
    assert dropped_with_its_workflow_task(
        rpc_error(RPCStatusCode.FAILED_PRECONDITION, WorkflowNotReadyFailure())
    )


def test_other_refusals_are_not_taken_for_a_dropped_update() -> None:
    assert not dropped_with_its_workflow_task(
        rpc_error(RPCStatusCode.FAILED_PRECONDITION, ResourceExhaustedFailure())
    )
    assert not dropped_with_its_workflow_task(
        rpc_error(RPCStatusCode.UNAVAILABLE, WorkflowNotReadyFailure())
    )
