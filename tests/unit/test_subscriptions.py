"""The subscription registry: handle sharing, last release, and its atomicity with ``add``."""

import threading
from typing import List

from dydx_ws.engine._subscriptions import SubscriptionRegistry, SubscriptionState
from dydx_ws.protocol._channels import Topic


def test_handles_share_a_topic_and_the_last_release_ends_it() -> None:
    released: List[Topic] = []
    reg = SubscriptionRegistry()
    topic = Topic("v4_trades", "BTC-USD", False)
    first, new_first = reg.add(topic, None, {}, lambda t, owner: released.append(t))
    second, new_second = reg.add(
        Topic("v4_trades", "BTC-USD", False), None, {}, lambda t, owner: released.append(t)
    )
    assert (new_first, new_second) == (True, False)
    first.unsubscribe()
    assert released == [] and second.state is SubscriptionState.PENDING
    second.unsubscribe()
    second.unsubscribe()  # idempotent
    assert [t.key for t in released] == [("v4_trades", "BTC-USD")]
    assert second.state is SubscriptionState.UNSUBSCRIBED and len(reg) == 0


def test_a_subscribe_waits_for_a_concurrent_last_release_to_finish() -> None:
    """The unsubscribe a last release queues must precede a new subscribe of the same topic
    on the wire, or the server ends the subscription the new handle relies on."""
    lock = threading.RLock()
    wire: List[str] = []
    in_release = threading.Event()
    finish_release = threading.Event()

    def on_last_release(topic: Topic, owner: int) -> None:
        in_release.set()
        assert finish_release.wait(10)
        wire.append("unsubscribe")

    reg = SubscriptionRegistry(lock)
    handle, _ = reg.add(Topic("v4_orderbook", "ETH-USD", False), None, {}, on_last_release)

    def subscribe_again() -> None:
        with lock:  # as the client does: add, then queue the subscribe, under its lock
            _, is_new = reg.add(Topic("v4_orderbook", "ETH-USD", False), None, {}, on_last_release)
            if is_new:
                wire.append("subscribe")

    releaser = threading.Thread(target=handle.unsubscribe, name="releaser")
    releaser.start()
    assert in_release.wait(10)
    subscriber = threading.Thread(target=subscribe_again, name="subscriber")
    subscriber.start()
    subscriber.join(0.2)
    assert subscriber.is_alive(), "add must not run while a last release is in progress"
    finish_release.set()
    releaser.join(10)
    subscriber.join(10)
    assert wire == ["unsubscribe", "subscribe"]
    assert len(reg) == 1
