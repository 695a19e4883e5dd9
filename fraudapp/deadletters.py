"""Rejected input -> the dead-letter record of contract §6."""

from __future__ import annotations

import base64
import time
from typing import Any

from fraudapp.validate import Rejection

# A dead letter must fit in one Kafka record (1 MiB by default) even when the input was
# oversize; base64 grows a value by a third, so keep at most this much of it.
MAX_KEPT_BYTES = 512 * 1024


def _text_or_base64(data: bytes | None) -> tuple[str | None, str]:
    if data is None:
        return None, "none"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def dead_letter(
    rejection: Rejection,
    *,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    value: bytes | None,
    received_at: float | None = None,
) -> dict[str, Any]:
    truncated = value is not None and len(value) > MAX_KEPT_BYTES
    kept = value[:MAX_KEPT_BYTES] if truncated and value is not None else value
    key_text, key_encoding = _text_or_base64(key)
    value_text, value_encoding = _text_or_base64(kept)
    return {
        "error": rejection.error,
        "detail": rejection.detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        "value": value_text,
        "key_encoding": key_encoding,
        "value_encoding": value_encoding,
        "value_truncated": truncated,
        "received_at": time.time() if received_at is None else received_at,
    }
