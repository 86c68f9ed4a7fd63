"""Bug 5 and the forgotten ``start()``: after the reconnect policy gives up, ``client.state`` is
``"failed"``, ``wait_connected`` returns False at once and ``wait_subscribed`` raises at once
with the cause; a client never started says so instead of timing out, and its empty book is
stale."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers.user_scripts import run_script, write_script


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("policy", ["max_attempts=2", "max_elapsed=0.3"])
def test_after_giving_up_state_says_failed_and_waits_return_at_once(
    tmp_path: Path, policy: str
) -> None:
    script = write_script(
        tmp_path,
        f"""
        import sys, time
        from dydx_ws import (DydxConnectionError, DydxWebSocketClient, ReconnectPolicy,
                             SubscriptionError)
        policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.1, {policy})
        with DydxWebSocketClient(url=sys.argv[1], reconnect=policy, check_interval=None) as c:
            c.on("error", lambda e: None)
            sub = c.subscribe_trades("BTC-USD")
            t0 = time.monotonic()
            print("connected", c.wait_connected(30))
            try:
                sub.wait_subscribed(30)
            except SubscriptionError as exc:
                print("refused", type(exc.__cause__).__name__, "giving up" in str(exc))
            print("waited", round(time.monotonic() - t0))
            print("state", c.state)
            late = c.subscribe_orderbook("ETH-USD")
            print("late", late.state.value)
            print("stats error", c.stats()["last_connection_error"] is not None)
        """,
    )
    r = run_script(script, [f"ws://127.0.0.1:{_closed_port()}/v4/ws"], timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "connected False" in out
    assert "refused DydxConnectionError True" in out
    assert "waited 0" in out or "waited 1" in out, out  # not the 30 s timeouts
    assert "state failed" in out
    assert "late failed" in out
    assert "stats error True" in out


def test_waiting_on_a_client_never_started_says_so(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        from dydx_ws import DydxWebSocketClient, DydxWsError
        client = DydxWebSocketClient(url="ws://127.0.0.1:9/v4/ws", check_interval=None)
        sub = client.subscribe_orderbook("BTC-USD")
        print("stale", client.order_book("BTC-USD").stale)
        for wait in (client.wait_connected, sub.wait_subscribed):
            try:
                wait(30)
            except DydxWsError as exc:
                print("hint:", exc)
        """,
    )
    r = run_script(script, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "stale True" in r.stdout
    assert r.stdout.count("hint: this client was never started: call client.start()") == 2
