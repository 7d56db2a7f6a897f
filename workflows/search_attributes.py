"""The custom search attributes every session keeps current (DESIGN section 2)."""

from temporalio.common import SearchAttributeKey

WORKER_ID = SearchAttributeKey.for_keyword("WorkerId")
SESSION_STATUS = SearchAttributeKey.for_keyword("SessionStatus")
SOP_ID = SearchAttributeKey.for_keyword("SopId")
SOP_TITLE = SearchAttributeKey.for_text("SopTitle")

ALL = (WORKER_ID, SESSION_STATUS, SOP_ID, SOP_TITLE)
