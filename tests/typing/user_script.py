"""A user's script, type-checked by ``test_user_script_type_checks.py`` (mypy --strict): every
subscribe_* accepts a callback typed with its own message class, or with ``Message``."""

from __future__ import annotations

from dydx_ws import (
    BlockHeightMessage,
    CandleResolution,
    CandlesMessage,
    DydxWebSocketClient,
    MarketsMessage,
    Message,
    OrderbookMessage,
    ParentSubaccountMessage,
    SubaccountMessage,
    TradesMessage,
)

ADDRESS = "dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art"


def on_trades(msg: TradesMessage) -> None:
    for trade in msg.trades:
        print(trade.side, trade.size, trade.price)


def on_book(msg: OrderbookMessage) -> None:
    print(msg.book.best_bid if msg.book is not None else None)


def on_candles(msg: CandlesMessage) -> None:
    print(len(msg.candles))


def on_markets(msg: MarketsMessage) -> None:
    print(len(msg.markets))


def on_account(msg: SubaccountMessage) -> None:
    print(msg.orders)


def on_parent(msg: ParentSubaccountMessage) -> None:
    print(msg.subaccount_number)


def on_height(msg: BlockHeightMessage) -> int:
    return msg.height


def on_any(msg: Message) -> None:
    print(msg.channel)


def main() -> None:
    with DydxWebSocketClient(url="ws://127.0.0.1:8765/v4/ws") as client:
        client.subscribe_trades("BTC-USD", on_trades)
        client.subscribe_orderbook("BTC-USD", on_book)
        client.subscribe_candles("BTC-USD", CandleResolution.ONE_MINUTE, on_candles)
        client.subscribe_markets(on_markets)
        client.subscribe_subaccount(ADDRESS, 0, on_account)
        client.subscribe_parent_subaccount(ADDRESS, 0, on_parent)
        client.subscribe_parent_subaccount(ADDRESS, 0, on_account)  # the parent class is fine
        client.subscribe_block_height(on_height)
        client.subscribe_trades("ETH-USD", on_any)  # a generic handler fits every channel
        client.subscribe_orderbook("ETH-USD", print)
        client.subscribe_block_height(lambda m: print(m.height, m.time))


if __name__ == "__main__":
    main()
