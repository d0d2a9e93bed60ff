"""The handlers' message types: what adapters hand in (`ChatMessage`) and get back (`Reply`).

Defined in the core (`gpudesk.market.message`) so the ledger can store them without reaching
outward; adapters import them from here.
"""

from gpudesk.market.message import ChatMessage, Reply

__all__ = ["ChatMessage", "Reply"]
