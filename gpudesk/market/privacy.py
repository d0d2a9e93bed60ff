"""Masking of personal contact data: phone numbers and WeChat ids, before text reaches a log or
a digest.

Deal posts are full of contact details ("联系 138-1234-5678", "V: gpu_boss88", "wxid_…"). The
ledger keeps them (it is the record), but what leaves it for an operator's log or a weekly
digest read by a whole group must not carry them. `mask_personal` is the one function for
that; it is pure, so the same rules apply wherever it is called.

- Phone numbers: Chinese mobiles (13812345678, 138 1234 5678, +86 138-1234-5678,
  0086 13812345678) and international numbers written with a leading `+` (+1 415 555 0199,
  +44 20 7946 0958). Every digit but the last four becomes `*`, separators kept:
  "+86 138-1234-5678" -> "+** ***-****-5678". Prices ("7.5w", "12000") are never touched: a
  bare number must look like a Chinese mobile (11 digits, 1[3-9]…) to be masked.
- WeChat ids: `wxid_…` (the platform's own ids), and an id after a WeChat label ("微信",
  "微信号", "威信", "薇信", "V信", "VX", "WX", "wechat", or a lone "V"/"v" followed by a colon):
  "微信: abc123" -> "微信: ***". A lone V needs its colon, since "V100" is a GPU.

    >>> mask_personal("出 H100 联系 13812345678 微信: gpu_boss88")
    '出 H100 联系 *******5678 微信: ***'
"""

from __future__ import annotations

import re

__all__ = ["MASK", "mask_personal"]

MASK = "***"
_KEEP_DIGITS = 4  # a phone number keeps its last four digits, as receipts do

# A Chinese mobile: optional +86 / 0086 / 86 prefix, then 1[3-9] and 9 more digits, in groups
# of 3-4-4 with optional spaces, dashes or dots between them.
_CN_MOBILE = (
    r"(?:(?:\+|00)?86[\s\-]?)?"
    r"1[3-9]\d[\s\-.]?\d{4}[\s\-.]?\d{4}"
)
# An international number: a leading +, then 7 to 15 digits in groups.
_INTERNATIONAL = r"\+\d{1,4}(?:[\s\-.]?\(?\d{1,5}\)?){2,6}"
_PHONE_RE = re.compile(rf"(?<![\d+])(?:{_CN_MOBILE}|{_INTERNATIONAL})(?!\d)")

# A WeChat id: 6-20 characters, starting with a letter (WeChat's own rule), or a wxid_.
_WXID_RE = re.compile(r"(?<![A-Za-z0-9_])wxid_[A-Za-z0-9_\-]+", re.IGNORECASE)
_WECHAT_LABEL_RE = re.compile(
    r"(?P<label>(?:微信号?|威信|薇信|[Vv]信|(?<![A-Za-z])(?i:vx|wx|wechat))\s*[:：]?\s*"
    r"|(?<![A-Za-z0-9])[Vv]\s*[:：]\s*)"
    r"(?P<id>[A-Za-z][A-Za-z0-9_\-]{5,19})(?![A-Za-z0-9_\-])"
)


def mask_personal(text: str) -> str:
    """`text` with phone numbers and WeChat ids masked (see the module docstring)."""
    if not text:
        return text
    text = _WXID_RE.sub(lambda m: "wxid_" + MASK, text)
    text = _WECHAT_LABEL_RE.sub(lambda m: m.group("label") + MASK, text)
    return _PHONE_RE.sub(_mask_phone, text)


def _mask_phone(match: re.Match[str]) -> str:
    number = match.group(0)
    digits = sum(char.isdigit() for char in number)
    if not 7 <= digits <= 15:
        return number  # too short or too long for a phone number: leave it
    hide = digits - _KEEP_DIGITS
    out = []
    for char in number:
        if char.isdigit() and hide > 0:
            out.append("*")
            hide -= 1
        else:
            out.append(char)
    return "".join(out)
