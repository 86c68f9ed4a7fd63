"""The README's API example runs as written (against the emulator instead of mainnet), so the
documentation cannot drift from the code (v4-clients #306: a documented API that did not work)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from dydx_ws.emulator import IndexerEmulator

README = Path(__file__).resolve().parents[2] / "README.md"
REAL_ADDRESS = "dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art"
CONNECTED = '{"type":"connected","connection_id":"x","message_id":0}'


def test_the_api_in_one_screen_runs() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## The API in one screen\n\n```python\n(.*?)```", text, re.S)
    assert block, "README lost its API example"
    code = block.group(1)
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=3, block_time=0.1) as emu:
        for old, new in (
            ("network=Network.MAINNET", "network=emu.network"),
            ("IndexerRestClient(Network.MAINNET)", "IndexerRestClient(emu.network)"),
            (REAL_ADDRESS, emu.demo_address),
            ("    client.run_forever()", "    pass  # run_forever()"),
            ("decode_message(raw_frame)", f"decode_message({CONNECTED!r})"),
        ):
            assert old in code, f"README example changed: {old!r} not found"
            code = code.replace(old, new)
        out = io.StringIO()
        namespace = {"emu": emu}
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(README), "exec"), namespace)
    printed = out.getvalue()
    assert "BUY" in printed or "SELL" in printed  # trades reached the callback
    assert namespace["btc"].ticker == "BTC-USD"
    assert namespace["msg"].type == "connected"


def test_the_emulator_snippet_shows_a_dropped_and_restored_connection() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(
        r"## The emulator \(offline tests and demos\)\n\n```python\n(.*?)```", text, re.S
    )
    assert block, "README lost its emulator example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1), str(README), "exec"), {})
    printed = out.getvalue()
    assert "1 connection(s) dropped" in printed, printed
    assert "restored [('v4_subaccounts'" in printed, printed
