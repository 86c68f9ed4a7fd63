"""dydx_ws: live dYdX v4 Indexer data for plain Python — threaded, synchronous, typed.

A background I/O thread keeps the WebSocket alive (reconnect, heartbeat, resubscription),
decodes every frame into typed dataclasses and hands them, in order per subscription, to a
worker pool that runs your callbacks. See README.md for the architecture and guarantees.
"""

import logging

from .decode import decode_message
from .errors import DecodeError, DydxConnectionError, DydxWsError, RestError, SubscriptionError
from .messages import (
    BlockHeightMessage,
    CandlesMessage,
    ConnectedMessage,
    ErrorMessage,
    MarketsMessage,
    Message,
    OrderbookMessage,
    ParentSubaccountMessage,
    SubaccountMessage,
    TradesMessage,
    UnknownMessage,
    UnsubscribedMessage,
)
from .models import CandleResolution
from .network import Network

logging.getLogger("dydx_ws").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "BlockHeightMessage",
    "CandleResolution",
    "CandlesMessage",
    "ConnectedMessage",
    "DecodeError",
    "DydxConnectionError",
    "DydxWsError",
    "ErrorMessage",
    "MarketsMessage",
    "Message",
    "Network",
    "OrderbookMessage",
    "ParentSubaccountMessage",
    "RestError",
    "SubaccountMessage",
    "SubscriptionError",
    "TradesMessage",
    "UnknownMessage",
    "UnsubscribedMessage",
    "__version__",
    "decode_message",
]
