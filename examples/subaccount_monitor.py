"""Subaccount monitor: orders, fills and positions of one subaccount as they change.

.venv/bin/python examples/subaccount_monitor.py --emulator --duration 5  # the demo account
.venv/bin/python examples/subaccount_monitor.py dydx1... --subaccount 0
"""

from __future__ import annotations

import argparse
import contextlib
import time

from dydx_ws import DydxWebSocketClient, Network, SubaccountMessage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="dydx1... address (default with --emulator)")
    parser.add_argument("--subaccount", type=int, default=0)
    parser.add_argument("--emulator", action="store_true", help="use a local emulator (offline)")
    parser.add_argument("--network", default="mainnet", help="mainnet, testnet or a ws:// URL")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to run")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        address = args.address
        if args.emulator:
            from dydx_ws.emulator import IndexerEmulator

            emu = stack.enter_context(IndexerEmulator(block_time=0.5))
            network, address = emu.network, address or emu.demo_address
        else:
            network = Network.from_name(args.network)
        if not address:
            parser.error("an address is needed (or use --emulator)")

        def on_account(msg: SubaccountMessage) -> None:
            if msg.is_snapshot and msg.subaccount is not None:
                print(f"snapshot: equity {msg.subaccount.equity:.2f}")
            for order in msg.orders:
                print(
                    f"order    {order.side.value if order.side else '?':<4} {order.size} "
                    f"{order.ticker} @ {order.price}  {order.status.value}"
                )
            for fill in msg.fills:
                print(f"fill     {fill.side.value:<4} {fill.size} {fill.market} @ {fill.price}")
            for pos in msg.perpetual_positions:
                print(f"position {pos.market} {pos.side.value} {pos.size}")

        client = stack.enter_context(DydxWebSocketClient(network=network))
        client.subscribe_subaccount(address, args.subaccount, on_account).wait_subscribed(15)
        time.sleep(args.duration)

        view = client.subaccount(address, args.subaccount).view()  # one consistent read
        print(
            f"\nequity {view.equity:.2f}  free collateral {view.free_collateral:.2f}  "
            f"open orders {len(view.open_orders)}  positions {len(view.positions)}  "
            f"fills seen {len(view.fills)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
