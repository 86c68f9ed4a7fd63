"""Behaviour of dydx_ws.state._orderbook.OrderBook, fed with decoded wire frames (protocol.md §3.3).

Covers the book bugs other SDKs shipped (anchors.md §3 items 6, 21-24): snapshots merged into a
stale book, deletes of absent levels raising, unsorted sides, float keys, crossed books.
Concurrency is synchronised with Events and joins, never with sleeps.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from dydx_ws import OrderbookMessage, decode_message
from dydx_ws.models import PriceLevel
from dydx_ws.state._orderbook import BookDepth, OrderBook

FRAMES = Path(__file__).resolve().parent.parent / "fixtures" / "frames"
D = Decimal
Pairs = Sequence[Tuple[str, str]]
_ids = iter(range(1000, 10**9))


def frame_file(name: str) -> OrderbookMessage:
    msg = decode_message((FRAMES / name).read_text())
    assert isinstance(msg, OrderbookMessage)
    return msg


def snapshot(
    bids: Pairs = (), asks: Pairs = (), message_id: Optional[int] = None, ticker: str = "ETH-USD"
) -> OrderbookMessage:
    """A ``subscribed`` frame shaped like the real capture (object levels, bids then asks)."""
    frame = {
        "type": "subscribed",
        "connection_id": "c",
        "message_id": message_id or next(_ids),
        "channel": "v4_orderbook",
        "id": ticker,
        "contents": {
            "bids": [{"price": p, "size": s} for p, s in bids],
            "asks": [{"price": p, "size": s} for p, s in asks],
        },
    }
    msg = decode_message(json.dumps(frame))
    assert isinstance(msg, OrderbookMessage) and msg.is_snapshot
    return msg


def update(
    bids: Pairs = (), asks: Pairs = (), message_id: Optional[int] = None
) -> OrderbookMessage:
    """A ``channel_data`` frame (pair levels); both sides allowed, as clients must accept."""
    contents: Dict[str, Any] = {}
    if bids:
        contents["bids"] = [list(x) for x in bids]
    if asks:
        contents["asks"] = [list(x) for x in asks]
    frame = {
        "type": "channel_data",
        "connection_id": "c",
        "message_id": message_id or next(_ids),
        "channel": "v4_orderbook",
        "id": "ETH-USD",
        "version": "1.0.0",
        "contents": contents,
    }
    msg = decode_message(json.dumps(frame))
    assert isinstance(msg, OrderbookMessage) and not msg.is_snapshot
    return msg


def batch(
    elements: Sequence[Tuple[str, str, str]], message_id: Optional[int] = None
) -> OrderbookMessage:
    """A ``channel_batch_data`` frame: one ``{side: [[price, size]]}`` element per update."""
    frame = {
        "type": "channel_batch_data",
        "connection_id": "c",
        "message_id": message_id or next(_ids),
        "channel": "v4_orderbook",
        "id": "ETH-USD",
        "version": "1.0.0",
        "contents": [{side: [[p, s]]} for side, p, s in elements],
    }
    msg = decode_message(json.dumps(frame))
    assert isinstance(msg, OrderbookMessage)
    return msg


def side(levels: List[PriceLevel]) -> List[Tuple[str, str]]:
    return [(str(lvl.price), str(lvl.size)) for lvl in levels]


def pl(price: str, size: str) -> PriceLevel:
    return PriceLevel(D(price), D(size))


# ----------------------------------------------------------------------------- snapshots


def test_real_snapshot_is_sorted_best_first() -> None:
    book = OrderBook("ETH-USD")
    book.apply(frame_file("v4_orderbook__subscribed__ntl-eth-full-book.json"))
    bids, asks = book.bids, book.asks
    assert bids and asks
    assert [b.price for b in bids] == sorted((b.price for b in bids), reverse=True)
    assert [a.price for a in asks] == sorted(a.price for a in asks)
    assert book.best_bid == bids[0] and book.best_ask == asks[0]
    assert book.best_ask == pl("3393.5", "4.946")
    assert book.best_bid == pl("3393.2", "7.795")
    assert len(book) == len(bids) + len(asks)
    assert book.last_message_id == 4
    assert book.crossed == 0


def test_snapshot_replaces_never_merges() -> None:
    """ccxt #29210: a level from before the reconnect must not survive the new snapshot."""
    book = OrderBook("ETH-USD")
    book.apply(snapshot(bids=[("100", "1"), ("99", "2")], asks=[("101", "1"), ("105", "3")]))
    book.apply(update(bids=[("98", "7")], asks=[("104", "4")]))
    book.mark_stale()
    book.apply(snapshot(bids=[("99.5", "1")], asks=[("102", "2")]))
    assert side(book.bids) == [("99.5", "1")]
    assert side(book.asks) == [("102", "2")]
    assert not book.stale


def test_rest_resync_replaces() -> None:
    book = OrderBook("ETH-USD")
    book.apply(snapshot(bids=[("100", "1")], asks=[("101", "1")], message_id=5))
    book.apply_snapshot([pl("99", "3")], [pl("103", "4"), pl("102", "2")])
    assert side(book.bids) == [("99", "3")]
    assert side(book.asks) == [("102", "2"), ("103", "4")]
    assert book.last_message_id == 5  # a resync without id keeps the last frame's id


def test_empty_snapshot_empties_book() -> None:
    book = OrderBook("ETH-USD")
    book.apply(snapshot(bids=[("1", "1")], asks=[("2", "1")]))
    book.apply(snapshot())
    assert len(book) == 0
    assert book.best_bid is None and book.best_ask is None
    assert book.mid is None and book.spread is None
    assert book.depth(5) == BookDepth(bids=[], asks=[])


# ----------------------------------------------------------------------------- updates


def test_updates_are_absolute_sizes_and_zero_removes() -> None:
    book = OrderBook("ETH-USD")
    book.apply(snapshot(bids=[("100", "1"), ("99", "2")], asks=[("101", "1")]))
    book.apply(update(bids=[("99", "5")]))  # absolute: 5, not 2 + 5
    assert side(book.bids) == [("100", "1"), ("99", "5")]
    book.apply(update(bids=[("100", "0")]))
    assert side(book.bids) == [("99", "5")]
    book.apply(update(asks=[("101.5", "3")]))  # a new level is inserted in order
    assert side(book.asks) == [("101", "1"), ("101.5", "3")]


def test_removing_an_absent_level_is_a_no_op() -> None:
    """pybit #369: deleting an absent level raised and the message was dropped."""
    book = OrderBook("ETH-USD")
    book.apply(snapshot(bids=[("100", "1")], asks=[("101", "1")]))
    before = (book.bids, book.asks)
    book.apply(update(bids=[("50", "0")], asks=[("500", "0")]))
    book.apply(frame_file("v4_orderbook__channel_data__ntl-btc-level-delete.json"))
    assert (book.bids, book.asks) == before
    empty = OrderBook("BTC-USD")
    empty.apply(update(bids=[("1", "0")]))  # before any snapshot, on an empty book
    assert len(empty) == 0


def test_batch_applies_in_order_and_later_entry_wins() -> None:
    book = OrderBook("ETH-USD", uncross="none")
    book.apply(snapshot(bids=[("2396", "1")], asks=[("2397.1", "1")]))
    msg = frame_file("v4_orderbook__channel_batch_data__ntl-eth-41-updates.json")
    # The real capture sets 2396.3 twice: 2.299, then 4.788.
    sets = [lvl.size for lvl in msg.bids if lvl.price == D("2396.3")]
    assert sets[:2] == [D("2.299"), D("4.788")]
    book.apply(msg)
    expected: Dict[Decimal, Decimal] = {D("2396"): D("1")}
    for lvl in msg.bids:
        if lvl.size:
            expected[lvl.price] = lvl.size
        else:
            expected.pop(lvl.price, None)
    assert {b.price: b.size for b in book.bids} == expected
    assert book.last_message_id == msg.message_id
    # Same price twice inside one synthetic batch, set then delete then set.
    book.apply(
        batch(
            [
                ("bids", "10", "1"),
                ("bids", "10", "0"),
                ("bids", "10", "3"),
                ("asks", "9000", "2"),
                ("asks", "9000", "0"),
            ]
        )
    )
    assert book.size_at("10") == D("3")
    assert book.size_at("9000") == 0


def test_prices_match_by_decimal_value() -> None:
    book = OrderBook("ETH-USD")
    book.apply(snapshot(bids=[("2396.1", "1")], asks=[("2400", "1")]))
    book.apply(update(bids=[("2396.10", "4")], asks=[("2400.000", "2")]))
    assert len(book) == 2
    assert book.best_bid is not None and book.best_bid.size == D("4")
    assert book.best_ask is not None and book.best_ask.size == D("2")
    book.apply(update(bids=[("2396.100", "0")]))
    assert book.bids == []
    assert isinstance(book.size_at(2400), Decimal)


def test_accessors() -> None:
    book = OrderBook("ETH-USD")
    assert book.mid is None and book.spread is None and book.updated_at is None
    book.apply(
        snapshot(
            bids=[("100", "1"), ("99", "2"), ("98", "3")],
            asks=[("101", "4"), ("102", "5")],
            message_id=7,
        )
    )
    assert book.mid == D("100.5")
    assert book.spread == D("1")
    assert book.updated_at is not None
    d = book.depth(2)
    assert side(d.bids) == [("100", "1"), ("99", "2")]
    assert side(d.asks) == [("101", "4"), ("102", "5")]
    assert book.depth(0) == BookDepth([], [])
    assert len(book.depth(50).bids) == 3
    with pytest.raises(ValueError):
        book.depth(-1)
    assert book.top() == (pl("100", "1"), pl("101", "4"))
    assert book.ticker == "ETH-USD" and len(book) == 5
    text = repr(book)
    assert "ETH-USD" in text and "1@100" in text and "4@101" in text and "levels=5" in text
    assert "stale=False" in text
    page = book._repr_html_()
    assert page.startswith("<table") and page.count("<tr>") == 1 + 3 and "ETH-USD" in page
    with pytest.raises(ValueError):
        OrderBook("ETH-USD", uncross="newest")


def test_repr_html_shows_at_most_ten_levels() -> None:
    book = OrderBook("ETH-USD")
    book.apply_snapshot(
        [pl(str(100 - i), "1") for i in range(30)], [pl(str(200 + i), "1") for i in range(12)]
    )
    assert book._repr_html_().count("<tr>") == 1 + 10


# ----------------------------------------------------------------------------- uncrossing


def test_message_id_policy_removes_older_level() -> None:
    book = OrderBook("ETH-USD", uncross="message_id")
    book.apply(
        snapshot(bids=[("100", "1"), ("99", "1")], asks=[("101", "1"), ("102", "1")], message_id=10)
    )
    # A newer bid at 102.5 crosses two older asks: both are removed (two resolutions).
    book.apply(update(bids=[("102.5", "0.5")], message_id=11))
    assert side(book.asks) == []
    assert side(book.bids) == [("102.5", "0.5"), ("100", "1"), ("99", "1")]
    assert book.crossed == 2
    # A newer ask below the bids: the older bids (ids 10, 11) go, the new ask stays whole.
    book.apply(update(asks=[("99.5", "7")], message_id=12))
    assert side(book.bids) == [("99", "1")]
    assert side(book.asks) == [("99.5", "7")]
    assert book.crossed == 4
    assert not book.is_crossed


def test_message_id_policy_equal_ids_subtracts_sizes() -> None:
    book = OrderBook("ETH-USD", uncross="message_id")
    book.apply(snapshot(bids=[("99", "9")], asks=[("105", "9")], message_id=1))
    book.apply(update(bids=[("101", "3")], asks=[("100", "5")], message_id=2))
    # Same frame (id 2): bid 101@3 vs ask 100@5 -> ask reduced to 2, bid removed.
    assert side(book.bids) == [("99", "9")]
    assert side(book.asks) == [("100", "2"), ("105", "9")]
    assert book.crossed == 1
    book.apply(update(bids=[("102", "4")], asks=[("101", "4")], message_id=3))
    # Best bid 102 (id 3) vs best ask 100 (id 2): the older ask goes; then 102@4 vs 101@4
    # (both id 3), equal sizes: both removed.
    assert side(book.bids) == [("99", "9")]
    assert side(book.asks) == [("105", "9")]
    assert book.crossed == 3


def test_rest_levels_count_as_older_than_frames() -> None:
    book = OrderBook("ETH-USD", uncross="message_id")
    book.apply_snapshot([pl("100", "1")], [pl("101", "1")])  # REST: no message id
    book.apply(update(asks=[("100", "0.1")], message_id=1))
    assert side(book.bids) == []
    assert side(book.asks) == [("100", "0.1"), ("101", "1")]


def test_size_policy_ignores_recency() -> None:
    book = OrderBook("ETH-USD", uncross="size")
    book.apply(snapshot(bids=[("99", "9")], asks=[("101", "1"), ("102", "2")], message_id=1))
    # New bid 102@2.5 (id 2): vs ask 101@1 -> bid 1.5, ask gone; vs ask 102@2 -> ask 0.5, bid gone.
    book.apply(update(bids=[("102", "2.5")], message_id=2))
    assert side(book.bids) == [("99", "9")]
    assert side(book.asks) == [("102", "0.5")]
    assert book.crossed == 2
    # Equal sizes remove both, whatever the ids.
    book.apply(update(bids=[("103", "0.5")], message_id=3))
    assert side(book.asks) == [] and side(book.bids) == [("99", "9")]
    assert book.crossed == 3


def test_real_crossed_snapshot_fixture() -> None:
    """abacus fixture: bids 2@50, 1@2710; asks 1@70, 2@29100 (all one frame, equal ids)."""
    msg = frame_file("v4_orderbook__subscribed__abacus-fixture-crossed.json")
    for policy in ("message_id", "size"):
        book = OrderBook("APE-USD", uncross=policy)
        book.apply(msg)
        # bid 2@50 vs ask 1@70 -> ask 1@20, bid gone; bid 1@2710 vs ask 1@20 -> bid 1@2690.
        assert side(book.bids) == [("1", "2690")]
        assert side(book.asks) == [("2", "29100")]
        assert book.crossed == 2 and not book.is_crossed
    raw = OrderBook("APE-USD", uncross="none")
    raw.apply(msg)
    assert raw.is_crossed and raw.crossed == 0 and len(raw) == 4
    assert raw.spread == D("-1")


# ----------------------------------------------------------------------------- stale, copy


def test_stale_lifecycle() -> None:
    book = OrderBook("ETH-USD")
    assert book.stale  # no snapshot yet: an empty book must not look fresh
    book.apply(snapshot(bids=[("1", "1")], asks=[("2", "1")]))
    assert not book.stale
    book.mark_stale()
    assert book.stale
    book.apply(update(bids=[("1.5", "1")]))  # updates do not clear it
    assert book.stale and "stale=True" in repr(book)
    book.apply(snapshot(bids=[("1", "1")], asks=[("2", "1")]))
    assert not book.stale
    book.mark_stale()
    book.apply_snapshot([], [])  # a REST resync clears it too
    assert not book.stale


def test_copy_is_independent_and_complete() -> None:
    book = OrderBook("ETH-USD", uncross="size")
    book.apply(snapshot(bids=[("100", "1")], asks=[("101", "1")], message_id=3))
    book.apply(update(bids=[("101", "0.5")], message_id=4))
    book.mark_stale()
    snap = book.copy()
    assert (snap.bids, snap.asks) == (book.bids, book.asks)
    assert (snap.crossed, snap.stale, snap.last_message_id, snap.uncross, snap.ticker) == (
        1,
        True,
        4,
        "size",
        "ETH-USD",
    )
    book.apply(update(bids=[("100", "0")], asks=[("101", "9"), ("102", "1")], message_id=5))
    assert side(snap.bids) == [("100", "1")]
    assert side(snap.asks) == [("101", "0.5")]
    snap.apply(update(asks=[("103", "1")], message_id=6))
    assert book.size_at("103") == 0


# ----------------------------------------------------------------------------- drift check


def test_diff_and_equals_levels() -> None:
    book = OrderBook("ETH-USD")
    book.apply(
        snapshot(bids=[("100", "1"), ("99", "2"), ("98", "3")], asks=[("101", "1"), ("102", "2")])
    )
    assert book.equals_levels(
        [pl("100.0", "1"), pl("99", "2.00"), pl("98", "3")], [pl("102", "2"), pl("101", "1")]
    )
    d = book.diff(
        [pl("100", "1"), pl("99", "2.5")], [pl("101", "1"), pl("102", "2"), pl("103", "1")]
    )
    assert d and d.bids == [D("98"), D("99")] and d.asks == [D("103")]
    # Top-n comparison: the REST body is capped, the streamed book may hold deeper levels.
    assert book.equals_levels([pl("100", "1"), pl("99", "2")], [pl("101", "1")], depth=1)
    assert not book.equals_levels([pl("100", "2")], [pl("101", "1")], depth=1)
    assert not book.diff(book.bids, book.asks)


# ----------------------------------------------------------------------------- property test


class NaiveBook:
    """Reference model: plain dicts, best levels found with max/min, rules re-implemented."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.bids: Dict[Decimal, Tuple[Decimal, int]] = {}
        self.asks: Dict[Decimal, Tuple[Decimal, int]] = {}
        self.crossed = 0

    def frame(self, bids: Pairs, asks: Pairs, mid: int, is_snapshot: bool) -> None:
        if is_snapshot:
            self.bids, self.asks = {}, {}
        for book, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if D(s) > 0:
                    book[D(p)] = (D(s), mid)
                else:
                    book.pop(D(p), None)
        if self.policy == "none":
            return
        while self.bids and self.asks:
            bp, ap = max(self.bids), min(self.asks)
            if bp < ap:
                break
            self.crossed += 1
            (bs, bi), (as_, ai) = self.bids[bp], self.asks[ap]
            if self.policy == "message_id" and bi != ai:
                del (self.bids if bi < ai else self.asks)[bp if bi < ai else ap]
            elif bs > as_:
                self.bids[bp] = (bs - as_, bi)
                del self.asks[ap]
            elif as_ > bs:
                self.asks[ap] = (as_ - bs, ai)
                del self.bids[bp]
            else:
                del self.bids[bp], self.asks[ap]

    def levels(self) -> Tuple[List[Tuple[Decimal, Decimal]], List[Tuple[Decimal, Decimal]]]:
        return (
            sorted(((p, s) for p, (s, _) in self.bids.items()), reverse=True),
            sorted((p, s) for p, (s, _) in self.asks.items()),
        )


def _random_levels(rng: random.Random, n: int) -> List[Tuple[str, str]]:
    out = []
    for _ in range(n):
        price = D(rng.randrange(9_900, 10_100)) / 10  # 990.0 .. 1009.9, around a 1000 mid
        text = str(price) + ("0" if rng.random() < 0.2 else "")  # "1000.10" spellings too
        size = "0" if rng.random() < 0.3 else str(D(rng.randrange(1, 50)) / 4)
        out.append((text, size))
    return out


@pytest.mark.parametrize("policy", ["message_id", "size", "none"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_match_reference_model(policy: str, seed: int) -> None:
    rng = random.Random(seed)
    book, ref = OrderBook("X-USD", uncross=policy), NaiveBook(policy)
    for i in range(1, 1500):
        is_snapshot = rng.random() < 0.01 or i == 1
        bids = [
            (p, s)
            for p, s in _random_levels(rng, rng.randrange(0, 6))
            if not is_snapshot or s != "0"
        ]
        asks = [
            (p, s)
            for p, s in _random_levels(rng, rng.randrange(0, 6))
            if not is_snapshot or s != "0"
        ]
        if policy != "none" and not is_snapshot:
            # Keep most updates on their own side of the mid so the book stays deep.
            bids = [(p, s) for p, s in bids if D(p) < 1001 or rng.random() < 0.1]
            asks = [(p, s) for p, s in asks if D(p) > 999 or rng.random() < 0.1]
        msg = snapshot(bids, asks, message_id=i) if is_snapshot else update(bids, asks, i)
        book.apply(msg)
        ref.frame(bids, asks, i, is_snapshot)
        exp_b, exp_a = ref.levels()
        assert [(b.price, b.size) for b in book.bids] == exp_b, f"step {i}"
        assert [(a.price, a.size) for a in book.asks] == exp_a, f"step {i}"
        assert book.crossed == ref.crossed
        if policy != "none":
            assert not book.is_crossed
    assert len(book) > 10  # the run exercised a populated book
    if policy != "none":
        assert book.crossed > 0  # and the uncross path


# ----------------------------------------------------------------------------- threads


@pytest.mark.parametrize("policy", ["message_id", "size"])
def test_readers_never_see_crossed_or_half_applied_book(policy: str) -> None:
    """Each frame k sets bid 90 and ask 110 to size k (first and last levels of the batch) and
    pushes a crossing ask under the best bid; readers must see equal marker sizes and no cross."""
    book = OrderBook("ETH-USD", uncross=policy)
    book.apply(snapshot(bids=[("90", "1"), ("100", "5")], asks=[("110", "1")], message_id=1))
    filler = [(str(91 + i / 4), str(k % 3)) for i in range(30) for k in (i,)]
    frames = [
        update(
            bids=[("90", str(k)), *filler, ("100", "5")],
            asks=[("99", "1"), ("105", str(k % 7 + 1)), ("110", str(k))],
            message_id=k,
        )
        for k in range(2, 3002)
    ]
    start = threading.Barrier(3)
    done = threading.Event()
    errors: List[str] = []
    reads = [0, 0]

    def reader(slot: int) -> None:
        start.wait()
        try:
            read_until_done(slot)
        except Exception as exc:  # a torn read may also raise: report it as a failure
            errors.append(repr(exc))

    def read_until_done(slot: int) -> None:
        while not done.is_set() or reads[slot] == 0:
            view = book.copy() if reads[slot] % 5 == 0 else book
            d = view.depth(100)
            bid, ask = view.top()
            reads[slot] += 1
            if bid is not None and ask is not None and bid.price >= ask.price:
                errors.append(f"crossed: {bid} >= {ask}")
            sizes_b = {lvl.price: lvl.size for lvl in d.bids}
            sizes_a = {lvl.price: lvl.size for lvl in d.asks}
            if sizes_b.get(D(90)) != sizes_a.get(D(110)):
                errors.append(f"half batch: {sizes_b.get(D(90))} vs {sizes_a.get(D(110))}")
            if errors:
                return

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so a missing lock would show
    try:
        for t in threads:
            t.start()
        start.wait()
        for f in frames:
            book.apply(f)
    finally:
        done.set()
        sys.setswitchinterval(old_interval)
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert all(r > 0 for r in reads)
    assert book.crossed == len(frames)  # ask 99 crossed bid 100 once per frame
    assert book.bids[0] == pl("100", "4") and book.bids[-1] == pl("90", "3001")


def test_diff_depth_compares_only_the_price_range_the_capped_body_covers() -> None:
    full = [(str(200 - i), "1") for i in range(5)]  # 200..196
    book = OrderBook("ETH-USD")
    book.apply(
        snapshot(bids=[lv for lv in full if lv[0] != "198"] + [("150", "9")], asks=[("300", "1")])
    )
    rest_bids = [pl(p, s) for p, s in full]
    # The body is capped at 5: the local 150 level lies beyond it and is not a difference.
    assert book.diff(rest_bids, [pl("300", "1")], depth=5).bids == [D("198")]
    # A complete (shorter) body: the local top levels are compared with it.
    assert book.diff(rest_bids[:3], [pl("300", "1")], depth=5).bids == [
        D("150"),
        D("196"),
        D("197"),
        D("198"),
    ]
    with pytest.raises(ValueError):
        book.diff([], [], depth=-1)


def test_size_at_one_side() -> None:
    book = OrderBook("ETH-USD", uncross="none")
    book.apply(snapshot(bids=[("100", "1")], asks=[("100", "2")]))
    assert book.size_at("100", "bid") == 1 and book.size_at("100", "ask") == 2
    assert book.size_at("99", "ask") == 0
    with pytest.raises(ValueError):
        book.size_at("100", "both")
