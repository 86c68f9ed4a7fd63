"""dydx_ws: live dYdX v4 Indexer data for plain Python — threaded, synchronous, typed.

A background I/O thread keeps the WebSocket alive (reconnect, heartbeat, resubscription),
decodes every frame into typed dataclasses and hands them, in order per subscription, to a
worker pool that runs your callbacks. See README.md for the architecture and guarantees.
"""

import logging

from . import history
from .client import DydxWebSocketClient
from .decode import decode_message
from .dispatch import OverflowPolicy
from .errors import DecodeError, DydxConnectionError, DydxWsError, RestError, SubscriptionError
from .events import ConnectedEvent, DisconnectedEvent, ErrorEvent, ReconnectedEvent
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
from .orderbook import OrderBook
from .reconnect import ReconnectPolicy
from .redis_client import RedisStreamClient
from .rest import IndexerRestClient
from .subscriptions import Subscription, SubscriptionState

logging.getLogger("dydx_ws").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "BlockHeightMessage",
    "CandleResolution",
    "CandlesMessage",
    "ConnectedEvent",
    "ConnectedMessage",
    "DecodeError",
    "DisconnectedEvent",
    "DydxConnectionError",
    "DydxWebSocketClient",
    "DydxWsError",
    "ErrorEvent",
    "ErrorMessage",
    "IndexerRestClient",
    "MarketsMessage",
    "Message",
    "Network",
    "OrderBook",
    "OrderbookMessage",
    "OverflowPolicy",
    "ParentSubaccountMessage",
    "ReconnectPolicy",
    "ReconnectedEvent",
    "RedisStreamClient",
    "RestError",
    "SubaccountMessage",
    "Subscription",
    "SubscriptionError",
    "SubscriptionState",
    "TradesMessage",
    "UnknownMessage",
    "UnsubscribedMessage",
    "__version__",
    "decode_message",
    "history",
]
