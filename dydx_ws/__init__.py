"""dydx_ws: live dYdX v4 Indexer data for plain Python — threaded, synchronous, typed.

A background I/O thread keeps the WebSocket alive (reconnect, heartbeat, resubscription),
decodes every frame into typed dataclasses and hands them, in order per subscription, to a
worker pool that runs your callbacks. See README.md for the architecture and guarantees.
"""

from . import history
from .client import DydxWebSocketClient
from .engine._groups import ALL_MARKETS, SubscriptionGroup
from .engine._subscriptions import Subscription, SubscriptionState
from .engine._worker_pool import OverflowPolicy
from .errors import DecodeError, DydxConnectionError, DydxWsError, RestError, SubscriptionError
from .events import (
    ConnectedEvent,
    DisconnectedEvent,
    ErrorEvent,
    GroupEvent,
    ReconnectedEvent,
    ResyncEvent,
)
from .models import CandleResolution
from .network import Network
from .protocol._decode import decode_message
from .protocol._messages import (
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
from .redis_client import RedisStreamClient
from .rest import IndexerRestClient
from .state._orderbook import OrderBook
from .transport._reconnect import ReconnectPolicy

# No NullHandler on "dydx_ws": when the application configured no logging, Python's handler of
# last resort prints this package's warnings and errors (an unhandled callback error among them)
# on stderr, so they are never silent; any logging configuration of the application takes over.

__version__ = "0.1.0"

__all__ = [
    "ALL_MARKETS",
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
    "GroupEvent",
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
    "ResyncEvent",
    "SubaccountMessage",
    "Subscription",
    "SubscriptionError",
    "SubscriptionGroup",
    "SubscriptionState",
    "TradesMessage",
    "UnknownMessage",
    "UnsubscribedMessage",
    "__version__",
    "decode_message",
    "history",
]
