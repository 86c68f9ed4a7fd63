"""Server error frames are matched to the right subscriptions and mapped to the right action
(texts exactly as protocol.md §2.4)."""

from __future__ import annotations

from typing import Optional

import pytest

from dydx_ws.engine._subscriptions import SubscriptionRegistry
from dydx_ws.protocol._channels import Topic
from dydx_ws.protocol._messages import ErrorMessage
from dydx_ws.protocol._server_errors import ErrorAction, action_for, keys_of_error, limit_of


@pytest.fixture
def registry() -> SubscriptionRegistry:
    reg = SubscriptionRegistry()
    for topic in (
        Topic("v4_trades", "BTC-USD", False),
        Topic("v4_orderbook", "ETH-USD", False),
        Topic("v4_orderbook", "BTC-USD", False),
        Topic("v4_markets", None, False),
    ):
        reg.add(topic, None, {})
    reg.confirm(("v4_orderbook", "BTC-USD"))  # active: no longer pending
    return reg


def err(text: str, channel: Optional[str] = None, sid: Optional[str] = None) -> ErrorMessage:
    return ErrorMessage(type="error", message=text, channel=channel, id=sid)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("Internal error, could not fetch data for subscription: v4_trades.", ErrorAction.RETRY),
        ("Invalid subscribe message: already subscribed (v4_trades-BTC-USD)", ErrorAction.CONFIRM),
        (
            "Too many subscribe attempts for channel v4_trades-BTC-USD. "
            "Please  reconnect and try again.",
            ErrorAction.WAIT_FOR_CLOSE,
        ),
        ("Invalid subscription id for channel: (v4_trades-FOO-USD)", ErrorAction.FAIL),
        ("Per-connection subscription limit reached for v4_trades (limit=32).", ErrorAction.MOVE),
    ],
)
def test_actions(text: str, action: ErrorAction) -> None:
    assert action_for(text) is action


def test_channel_and_id_fields_win(registry: SubscriptionRegistry) -> None:
    msg = err(
        "Internal error, could not fetch data for subscription: v4_trades.", "v4_trades", "BTC-USD"
    )
    assert keys_of_error(msg, registry) == [("v4_trades", "BTC-USD")]
    assert keys_of_error(err("x", "v4_markets", "anything"), registry) == [("v4_markets", None)]
    assert keys_of_error(err("x", "v4_candles", "BTC-USD/1MIN"), registry) == []  # not ours


def test_channel_and_id_in_the_text(registry: SubscriptionRegistry) -> None:
    text = "Invalid subscription id for channel: (v4_orderbook-ETH-USD)"
    assert keys_of_error(err(text), registry) == [("v4_orderbook", "ETH-USD")]
    assert keys_of_error(err("(v4_orderbook-SOL-USD)"), registry) == []


def test_old_servers_name_only_the_channel(registry: SubscriptionRegistry) -> None:
    # pre-2025 servers sent the fetch error without channel/id: every pending one of the channel
    text = "Internal error, could not fetch data for subscription: v4_orderbook."
    assert keys_of_error(err(text), registry) == [("v4_orderbook", "ETH-USD")]
    limit = "Per-connection subscription limit reached for v4_orderbook (limit=32)."
    assert keys_of_error(err(limit), registry) == [("v4_orderbook", "ETH-USD")]


def test_errors_about_nothing_of_ours(registry: SubscriptionRegistry) -> None:
    for text in ("Invalid message: could not parse", "Internal error", "Invalid channel: x"):
        assert keys_of_error(err(text), registry) == []


def test_limit_error_goes_to_the_last_subscribe_sent_and_unanswered() -> None:
    reg = SubscriptionRegistry()
    old = Topic("v4_candles", "BTC-USD/5MINS", False)
    new = Topic("v4_candles", "ETH-USD/1MIN", False)
    for topic in (old, new):
        reg.add(topic, None, {})
    reg.note_sent(old.key)
    reg.note_sent(new.key)
    limit = "Per-connection subscription limit reached for v4_candles (limit=2)."
    assert keys_of_error(err(limit), reg) == [new.key]
    reg.note_answered(new.key)  # e.g. its fetch failed: the client retries the older one later
    reg.note_sent(new.key)
    reg.note_sent(old.key)  # the retry of the older subscription is written last
    assert keys_of_error(err(limit), reg) == [old.key]  # not the newest subscription
    reg.confirm(old.key)
    assert keys_of_error(err(limit), reg) == [new.key]
    reg.mark_all_pending()  # a reconnect: nothing is on the wire any more
    assert keys_of_error(err(limit), reg) == [new.key]  # fallback: the newest pending


def test_a_fetch_error_without_id_is_about_block_height() -> None:
    # The server echoes the id the client sent, and the client sends none for block height
    # (docs/protocol.md §2.4 row 11): the error must still find ("v4_block_height", its id).
    reg = SubscriptionRegistry()
    topic = Topic("v4_block_height", None, False)
    reg.add(topic, None, {})
    text = "Internal error, could not fetch data for subscription: v4_block_height."
    assert keys_of_error(err(text, "v4_block_height"), reg) == [topic.key]
    assert action_for(text) is ErrorAction.RETRY
    dup = "Invalid subscribe message: already subscribed (v4_block_height-v4_block_height)"
    assert keys_of_error(err(dup, "v4_block_height"), reg) == [topic.key]
    assert keys_of_error(err(dup), reg) == [topic.key]  # from the text on older servers


def test_a_fetch_error_without_id_is_about_markets(registry: SubscriptionRegistry) -> None:
    text = "Internal error, could not fetch data for subscription: v4_markets."
    assert keys_of_error(err(text, "v4_markets"), registry) == [("v4_markets", None)]
    dup = "Invalid subscribe message: already subscribed (v4_markets-v4_markets)"
    assert keys_of_error(err(dup, "v4_markets"), registry) == [("v4_markets", None)]
    assert keys_of_error(err(dup), registry) == [("v4_markets", None)]


def test_an_error_naming_an_unknown_channel_is_about_nothing(
    registry: SubscriptionRegistry,
) -> None:
    assert keys_of_error(err("x", "v4_nothing", "BTC-USD"), registry) == []


PENALTY = (
    "Repeatedly exceeded the per-connection subscription limit for v4_candles (limit=2). "
    "Unsubscribe before subscribing again, or open an additional connection. Closing this "
    "connection; reconnecting sooner than 30s will be refused."
)


def test_the_reconnect_penalty_is_attributed_like_the_limit_error() -> None:
    # Later server revisions close with 4008 after this text (docs/protocol.md §4.4): only the
    # refused subscribe moves, not every pending subscription of the channel.
    reg = SubscriptionRegistry()
    topics = [Topic("v4_candles", f"{t}-USD/1MIN", False) for t in ("BTC", "ETH", "SOL")]
    for topic in topics:
        reg.add(topic, None, {})
        reg.note_sent(topic.key)
    assert len(reg.pending_of_channel("v4_candles")) == 3
    assert keys_of_error(err(PENALTY), reg) == [topics[2].key]
    assert action_for(PENALTY) is ErrorAction.MOVE
    reg.note_answered(topics[2].key)
    reg.note_sent(topics[0].key)  # a retry of the oldest is the last subscribe sent
    assert keys_of_error(err(PENALTY), reg) == [topics[0].key]


@pytest.mark.parametrize(
    "text, limit",
    [
        ("Per-connection subscription limit reached for v4_trades (limit=32).", 32),
        (PENALTY, 2),
        ("Per-connection subscription limit reached for v4_trades.", None),
        ("Per-connection subscription limit reached for v4_trades (limit=abc).", None),
    ],
)
def test_limit_of_reads_the_limit_the_server_names(text: str, limit: object) -> None:
    assert limit_of(text) == limit
    assert action_for(text) is ErrorAction.MOVE
