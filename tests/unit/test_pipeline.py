"""The engine's stages, built by the pipeline builder without a socket: the I/O side (frames in,
dispatch / acks / errors out), the worker side (state applied, callbacks called, errors
isolated), the local state store, and ``client.feed`` on a client started without a connection.

Frames are real wire JSON; the connection is created but never started (nothing is sent)."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Optional

import pytest

from dydx_ws import DydxWebSocketClient, DydxWsError, ErrorEvent, OrderbookMessage
from dydx_ws.engine._pipeline import Pipeline
from dydx_ws.engine._subscriptions import Subscription, SubscriptionState
from dydx_ws.engine._worker_pool import OverflowPolicy
from dydx_ws.protocol._channels import Topic
from dydx_ws.protocol._decode import decode_message
from dydx_ws.state._store import LocalState
from dydx_ws.transport._connection import ConnectionOptions
from dydx_ws.transport._reconnect import ReconnectPolicy

D = Decimal
BOOK = ("v4_orderbook", "BTC-USD")
_ids = iter(range(1, 10**9))


def frame(kind: str, contents: Any = None, channel: str = "v4_orderbook", **extra: Any) -> str:
    body: Dict[str, Any] = {"type": kind, "connection_id": "c", "message_id": next(_ids)}
    if channel:
        body["channel"] = channel
        body["id"] = extra.pop("id", "BTC-USD")
    if contents is not None:
        body["contents"] = contents
    if kind == "channel_data":
        body["version"] = "1.0.0"
    body.update(extra)
    return json.dumps(body)


def snapshot(bids: List[List[str]], asks: List[List[str]]) -> str:
    def side(pairs: List[List[str]]) -> List[Dict[str, str]]:
        return [{"price": p, "size": s} for p, s in pairs]

    return frame("subscribed", {"bids": side(bids), "asks": side(asks)})


def update(bids: List[List[str]]) -> str:
    return frame("channel_data", {"bids": bids})


def build(**overrides: Any) -> Pipeline:
    settings: Dict[str, Any] = {
        "options": ConnectionOptions(url="ws://127.0.0.1:9", reconnect=ReconnectPolicy()),
        "workers": 2,
        "queue_size": 100,
        "overflow": OverflowPolicy.BLOCK,
        "block_timeout": 1.0,
        "uncross": "message_id",
        "idle_limits": None,
        "rest": None,
        "rest_route_limits": None,
        "check_interval": None,
        "confirm_delay": 1.0,
        "auto_affinity": False,
    }
    settings.update(overrides)
    return Pipeline(**settings)


class Stages:
    """A built pipeline, its workers started, with one order book subscription."""

    def __init__(self, **overrides: Any) -> None:
        self.p = build(**overrides)
        self.errors: List[ErrorEvent] = []
        self.p.hub.add("error", self.errors.append)
        self.p.lifecycle.started = True
        self.p.start(connect=False)

    def subscribe(self, callback: Any, key: Any = BOOK) -> Subscription:
        topic = Topic(key[0], key[1], False)
        handle, is_new = self.p.registry.add(topic, callback, {}, self.p.connections.end_topic)
        assert is_new
        self.p.store.create(topic)
        return handle

    def drain(self) -> None:
        """Wait until the workers ran everything queued so far (messages, then events)."""
        self.p.router.on_idle()
        for key in [t.key for t in self.p.registry.topics()] + [("__events__", None)]:
            done = threading.Event()
            assert self.p.pool.call_soon(key, done.set)
            assert done.wait(10)

    def close(self) -> None:
        assert self.p.pool.stop(10)
        assert self.p.connections.stop(10)


@pytest.fixture
def stages() -> Iterator[Stages]:
    s = Stages()
    yield s
    s.close()


# ---------------------------------------------------------------------------- the I/O side


def test_a_snapshot_confirms_the_subscription_and_reaches_the_worker(stages: Stages) -> None:
    got: List[OrderbookMessage] = []
    handle = stages.subscribe(got.append)
    assert handle.state is SubscriptionState.PENDING
    msg = stages.p.router.on_frame(snapshot([["100", "1"]], [["101", "2"]]), 123.0)
    assert isinstance(msg, OrderbookMessage) and msg.received_at == 123.0
    assert handle.state is SubscriptionState.ACTIVE  # the ack is matched on the I/O side
    assert handle.wait_subscribed(10)  # ... and the snapshot applied on the worker
    stages.drain()
    assert [m.is_snapshot for m in got] == [True]
    assert stages.p.counts()["frames"] == 1 and stages.p.router.per_channel["v4_orderbook"] == 1


def test_data_for_nobody_is_counted_and_reported(stages: Stages) -> None:
    stages.p.router.on_frame(update([["100", "1"]]))
    stages.drain()
    assert stages.p.counts()["unrouted"] == 1
    assert [e.kind for e in stages.errors] == ["unrouted"]


def test_an_update_before_its_snapshot_is_not_applied(stages: Stages) -> None:
    got: List[Any] = []
    stages.subscribe(got.append)
    stages.p.router.on_frame(update([["100", "1"]]))
    stages.drain()
    assert got == [] and stages.p.counts()["no_snapshot_drops"] == 1


def test_a_server_refusal_fails_the_subscription(stages: Stages) -> None:
    handle = stages.subscribe(None)
    text = "Invalid subscribe message: unknown market BTC-USD"
    stages.p.router.on_frame(frame("error", message=text))  # with channel and id
    stages.drain()
    assert stages.p.counts()["server_errors"] == 1
    assert handle.state is SubscriptionState.FAILED
    assert {e.kind for e in stages.errors} == {"server", "subscription"}


def test_an_undecodable_update_resubscribes_and_marks_the_book_stale(stages: Stages) -> None:
    stages.subscribe(None)
    stages.p.router.on_frame(snapshot([["100", "1"]], [["101", "2"]]))
    stages.drain()
    book = stages.p.store.books["BTC-USD"]
    assert not book.stale
    assert stages.p.router.on_frame(update([["NaN", "1"]])) is None
    counters = stages.p.counts()
    assert counters["decode_errors"] == 1 and counters["decode_resyncs"] == 1
    assert counters["resubscribes"] == 1 and counters["resyncs"] == 1
    assert counters["drift_repairs"] == 0
    assert book.stale  # until a fresh snapshot replaces it
    stages.drain()
    assert {e.kind for e in stages.errors} == {"decode", "desync"}


def test_an_overflow_drop_is_counted_reported_and_resubscribed() -> None:
    s = Stages(workers=1, queue_size=1, overflow=OverflowPolicy.DROP_NEWEST)
    try:
        release = threading.Event()
        s.subscribe(lambda m: release.wait(10))
        s.p.router.on_frame(snapshot([["100", "1"]], [["101", "2"]]))
        for i in range(5):  # the worker is stuck in the callback: the queue of 1 overflows
            s.p.router.on_frame(update([[str(90 + i), "1"]]))
        release.set()
        s.drain()
        assert s.p.counts()["dropped"] >= 1
        assert s.p.counts()["resubscribes"] == 1  # later drops within 2 s are deferred
        assert s.p.connections.totals()["drops_by_key"][BOOK] == s.p.counts()["dropped"]
        assert "overflow" in {e.kind for e in s.errors}
    finally:
        s.close()


def test_the_last_release_drops_the_topic_state(stages: Stages) -> None:
    handle = stages.subscribe(None)
    assert "BTC-USD" in stages.p.store.books
    handle.unsubscribe()
    assert "BTC-USD" not in stages.p.store.books and len(stages.p.registry) == 0


# ---------------------------------------------------------------------------- the worker side


def test_delivery_applies_state_before_the_callback(stages: Stages) -> None:
    seen: List[Optional[Decimal]] = []
    stages.subscribe(lambda m: seen.append(m.book.size_at(D(100))))
    stages.p.registry.confirm(BOOK)
    key, msg = BOOK, decode_message(snapshot([["100", "1"]], [["101", "2"]]))
    stages.p.delivery(key, msg)  # the worker side on this thread
    stages.p.delivery(key, decode_message(update([["100", "3"]])))
    assert seen == [D(1), D(3)]  # each callback sees the state with its own message applied
    entry = stages.p.registry.get(BOOK)
    assert entry is not None and entry.messages == 2


def test_a_raising_callback_is_isolated(stages: Stages) -> None:
    calls: List[str] = []

    def broken(msg: Any) -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    stages.subscribe(broken)
    topic = Topic(*BOOK, False)
    stages.p.registry.add(topic, lambda m: calls.append("ok"), {}, stages.p.connections.end_topic)
    stages.p.delivery(BOOK, decode_message(snapshot([["100", "1"]], [["101", "2"]])))
    stages.p.delivery(BOOK, decode_message(update([["100", "2"]])))
    assert calls == ["broken", "ok", "broken", "ok"]
    assert stages.p.counts()["callback_errors"] == 2
    assert stages.p.store.books["BTC-USD"].size_at(D(100)) == 2  # state kept going too
    stages.drain()
    assert [e.kind for e in stages.errors] == ["callback", "callback"]
    assert isinstance(stages.errors[0].exception, RuntimeError)


# ---------------------------------------------------------------------------- local state store


def test_the_store_creates_applies_marks_stale_and_drops() -> None:
    store = LocalState("message_id")
    topic = Topic(*BOOK, False)
    store.create(topic)
    book = store.books["BTC-USD"]
    assert book.stale  # nothing known before the first snapshot
    assert store.apply(BOOK, decode_message(snapshot([["100", "1"]], [["99", "2"]]))) == 1
    assert not book.stale and book.bids == [] and book.asks  # the crossed bid was resolved
    store.mark_books_stale(BOOK)
    assert book.stale
    store.create(Topic("v4_subaccounts", "dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art/0", False))
    assert len(store.accounts) == 1
    store.drop(BOOK)
    assert store.books == {}
    with pytest.raises(ValueError):
        LocalState("no-such-policy")


# ---------------------------------------------------------------------------- client.feed


def test_feed_goes_through_the_whole_pipeline_offline() -> None:
    client = DydxWebSocketClient(url="ws://127.0.0.1:9", check_interval=None)
    try:
        got: List[OrderbookMessage] = []
        client.subscribe_orderbook("BTC-USD", got.append)
        client.start(connect=False)
        msg = client.feed(snapshot([["100", "1"]], [["101", "2"]]), received_at=5.0)
        assert isinstance(msg, OrderbookMessage)
        assert client.feed(update([["100", "4"]]), flush=True) is not None
        assert client.feed("not json") is None
        assert client.drain(10)
        assert len(got) == 2 and got[0].received_at == 5.0
        assert client.order_book("BTC-USD").size_at(D(100)) == 4
        assert client.stats()["decode_errors"] == 1 and client.stats()["frames"] == 3
        assert not hasattr(client, "on_frame") and not hasattr(client, "on_open")
    finally:
        assert client.stop(10)
    with pytest.raises(DydxWsError, match="stopped"):
        client.feed(update([["100", "1"]]))


def test_feed_refuses_a_client_not_started_or_with_a_connection() -> None:
    client = DydxWebSocketClient(url="ws://127.0.0.1:9", check_interval=None)
    try:
        with pytest.raises(DydxWsError, match="start\\(connect=False\\)"):
            client.feed(update([["100", "1"]]))
        client.start()  # connects (and keeps retrying: nothing listens there)
        with pytest.raises(DydxWsError, match="own connection"):
            client.feed(update([["100", "1"]]))
        assert client.stats()["frames"] == 0
    finally:
        assert client.stop(10)
