"""Text the API takes in: nothing a database, a log line or a terminal would mangle or refuse."""

import re
from typing import Annotated

from pydantic import AfterValidator

# C0 controls but tab, line feed and carriage return; PostgreSQL refuses NUL outright. A lone
# surrogate has no UTF-8 form, so no database or log could store it either.
_REFUSED_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def refuse_control_characters(value: str) -> str:
    """Returns the text unchanged, or raises if it holds a character no record can keep."""
    refused = _REFUSED_CHARACTER.search(value)
    if refused is not None:
        raise ValueError(
            f"must not contain U+{ord(refused.group()):04X}: control characters other than "
            "tab, line feed and carriage return, and unpaired surrogates, are refused"
        )
    return value


PlainText = Annotated[str, AfterValidator(refuse_control_characters)]
