"""Logging that keeps personal data out: phone numbers and WeChat ids are masked in every
record an operator's log receives (issue 9, guarantee 8).

The filter sits on the handlers, not on loggers, so it sees every record that is written,
whichever library logged it (python-telegram-bot logs whole API payloads, message texts
included, at DEBUG). The bot token is redacted by each adapter (`telegram._TokenRedactor`,
`wechat._RedactToken`), which know it; this filter knows only the shape of personal data.

    handler = logging.StreamHandler()
    handler.addFilter(PrivacyFilter())
"""

from __future__ import annotations

import logging

from gpudesk.market.privacy import mask_personal

__all__ = ["PrivacyFilter", "install_privacy_filter"]


class PrivacyFilter(logging.Filter):
    """Masks phone numbers and WeChat ids in a record's message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it always does
            return True
        masked = mask_personal(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal(record.exc_text)
        return True


def install_privacy_filter(logger: logging.Logger | None = None) -> None:
    """Put a `PrivacyFilter` on every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, PrivacyFilter) for f in handler.filters):
            handler.addFilter(PrivacyFilter())
