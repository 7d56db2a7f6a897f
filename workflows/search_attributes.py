"""The custom search attributes every session keeps current (DESIGN section 2)."""

from temporalio.common import SearchAttributeKey

WORKER_ID = SearchAttributeKey.for_keyword("WorkerId")
SESSION_STATUS = SearchAttributeKey.for_keyword("SessionStatus")
SOP_ID = SearchAttributeKey.for_keyword("SopId")
SOP_TITLE = SearchAttributeKey.for_text("SopTitle")
# Checks whose latest record failed, so a supervisor can find sessions with failures.
FAILED_CHECKS = SearchAttributeKey.for_int("FailedChecks")

ALL = (WORKER_ID, SESSION_STATUS, SOP_ID, SOP_TITLE, FAILED_CHECKS)
