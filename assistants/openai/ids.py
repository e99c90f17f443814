"""OpenAI-style object ids: a type prefix and 24 random letters and digits."""

from __future__ import annotations

import secrets
import string

ASSISTANT = "asst_"
THREAD = "thread_"
MESSAGE = "msg_"
RUN = "run_"
STEP = "step_"
CALL = "call_"
FILE = "file-"
VECTOR_STORE = "vs_"
FILE_BATCH = "vsfb_"

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A fresh id of this type (143 random bits: no collision in practice)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))
