"""The demo account's trading: its orders, cancels, fills, transfers, and the subaccount
messages each block publishes for them.

The demo subaccounts place resting orders, take liquidity, get filled by the crowd and move
USDC between subaccounts; the changes of a block are collected per subaccount and published at
its end on ``v4_subaccounts`` and ``v4_parent_subaccounts``, as vulcan and ender do.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List

from .account import DemoOrder, Subaccount, stable_uuid
from .book import ASKS, BIDS
from .jsutil import dec_str, iso
from .sim_base import (
    ACTIVE,
    DEMO_SUBACCOUNTS,
    MAKER_FEE,
    TAKER_FEE,
    MarketState,
    Publication,
    SimulatorBase,
)


class DemoTrading(SimulatorBase):
    """The demo account's part of :class:`~dydx_ws.emulator.simulator.MarketSimulator`."""

    def _demo(self, out: List[Publication], block_trades: Dict[str, List[Dict[str, Any]]]) -> None:
        rng = self.rng
        tickers = list(block_trades)  # the markets trading in this block
        for sub in self.subaccounts.values():
            open_orders = [o for o in sub.orders.values() if o.status == "OPEN"]
            for order in open_orders:
                # orders of a delisted market stay as they are: nothing moves there any more
                if rng.random() < 0.04 and self.markets[order.ticker].status == ACTIVE:
                    self._demo_cancel(sub, order, out)
            if rng.random() < 0.15 and len(open_orders) < 4 and tickers:
                self._demo_place(sub, self.markets[rng.choice(tickers)], out)
            if rng.random() < 0.05 and tickers:
                ticker = rng.choice(tickers)
                self._demo_take(sub, self.markets[ticker], out, block_trades[ticker])
        if rng.random() < 0.03:
            self._demo_transfer()
        self._prune_orders()

    def _vulcan_order(self, sub: Subaccount, order: DemoOrder, out: List[Publication]) -> None:
        contents = {"orders": [sub.ws_order(order)], "blockHeight": str(self.height)}
        self._publish_sub(sub.number, contents, out)

    def _new_order(
        self,
        sub: Subaccount,
        state: MarketState,
        buy: bool,
        steps: int,
        price_ticks: int,
        **terms: Any,
    ) -> DemoOrder:
        """A new demo order of ``sub`` (registered with it), stamped with the current block."""
        self._client_id += 1
        order = DemoOrder(
            order_id=stable_uuid("order", sub.address, sub.number, self._client_id),
            client_id=self._client_id,
            subaccount_number=sub.number,
            ticker=state.spec.ticker,
            clob_pair_id=state.spec.clob_pair_id,
            side="BUY" if buy else "SELL",
            size=state.spec.size_dec(steps),
            price=state.spec.price_dec(price_ticks),
            created_height=self.height,
            created_at=self.time,
            updated_at=self.time,
            updated_height=self.height,
            **terms,
        )
        sub.orders[order.order_id] = order
        return order

    def _demo_place(self, sub: Subaccount, state: MarketState, out: List[Publication]) -> None:
        rng = self.rng
        book = state.book
        buy = rng.random() < 0.5
        side = BIDS if buy else ASKS
        best = book.best(side)
        if best is None:
            return
        price = best - rng.randint(0, 2) if buy else best + rng.randint(0, 2)
        if price <= 0:
            return
        steps = rng.randint(1, 10)
        order = self._new_order(
            sub,
            state,
            buy,
            steps,
            price,
            time_in_force="GTT",
            order_flags="64",
            good_til_block_time=iso(self.time + 3600),
        )
        out.append(
            self._level_pub(
                state, self._place(state, side, price, steps, sub.number, order.order_id)
            )
        )
        self._vulcan_order(sub, order, out)

    def _demo_cancel(self, sub: Subaccount, order: DemoOrder, out: List[Publication]) -> None:
        state = self.markets[order.ticker]
        if order.order_id in state.book.orders:
            out.append(self._level_pub(state, state.book.remove(order.order_id)))
        order.status = "CANCELED"
        order.updated_at, order.updated_height = self.time, self.height
        self._vulcan_order(sub, order, out)

    def _demo_take(
        self,
        sub: Subaccount,
        state: MarketState,
        out: List[Publication],
        trades: List[Dict[str, Any]],
    ) -> None:
        rng = self.rng
        buy = rng.random() < 0.5
        best = state.book.best(ASKS if buy else BIDS)
        if best is None:
            return
        steps = rng.randint(1, 8)
        order = self._new_order(
            sub,
            state,
            buy,
            steps,
            best + 5 if buy else max(best - 5, 1),
            time_in_force="IOC",
            order_flags="0",
            good_til_block=self.height + 20,
        )
        filled = self._take(state, order.side, steps, 2, (sub.number, order), out, trades)
        if filled < steps:
            order.status = "BEST_EFFORT_CANCELED"
            order.removal_reason = "ORDER_REMOVAL_REASON_IMMEDIATE_OR_CANCEL_WOULD_REST_ON_BOOK"
        self._pending_for(sub.number).orders[order.order_id] = order

    def _demo_fill(
        self,
        number: int,
        order_id: str,
        state: MarketState,
        side: str,
        price: Decimal,
        size: Decimal,
        liquidity: str,
        event_id: str,
        tx_hash: str,
    ) -> None:
        sub = self.subaccounts[number]
        order = sub.orders[order_id]
        fee = price * size * (TAKER_FEE if liquidity == "TAKER" else MAKER_FEE)
        changed = sub.apply_fill(state.spec.ticker, side, price, size, fee, self.time, self.height)
        order.total_filled += size
        if order.total_filled >= order.size:
            order.status = "FILLED"
        order.updated_at, order.updated_height = self.time, self.height
        pending = self._pending_for(number)
        pending.orders[order_id] = order
        pending.asset = True
        oracle = state.spec.price_dec(state.oracle_ticks)
        for pos in changed:
            pending.positions[pos.position_id] = sub.ws_position(pos, oracle)
        pending.fills.append(
            {
                "id": stable_uuid("fill", event_id, liquidity),
                "subaccountId": sub.subaccount_id,
                "side": side,
                "liquidity": liquidity,
                "type": "LIMIT",
                "clobPairId": str(state.spec.clob_pair_id),
                "size": dec_str(size),
                "price": dec_str(price),
                "quoteAmount": dec_str(price * size),
                "eventId": event_id,
                "transactionHash": tx_hash,
                "createdAt": iso(self.time),
                "createdAtHeight": str(self.height),
                "orderId": order_id,
                "clientMetadata": "0",
                "fee": dec_str(fee),
                "affiliateRevShare": "0",
                "ticker": state.spec.ticker,
            }
        )

    def _demo_transfer(self) -> None:
        rng = self.rng
        address = self.demo_address
        amount = Decimal(rng.randint(5, 100))
        tx_hash = self._tx_hash()
        base = {"symbol": "USDC", "size": dec_str(amount)}
        tail = {
            "transactionHash": tx_hash,
            "createdAt": iso(self.time),
            "createdAtHeight": str(self.height),
        }
        if rng.random() < 0.3:
            number = rng.choice(DEMO_SUBACCOUNTS)
            self.subaccounts[number].usdc += amount
            self.subaccounts[number].updated_height = self.height
            pending = self._pending_for(number)
            pending.asset = True
            pending.transfers.append(
                {
                    "sender": {"address": address},
                    "recipient": {"address": address, "subaccountNumber": number},
                    **base,
                    "type": "DEPOSIT",
                    **tail,
                }
            )
            return
        sender, recipient = DEMO_SUBACCOUNTS if rng.random() < 0.5 else DEMO_SUBACCOUNTS[::-1]
        if self.subaccounts[sender].usdc < amount:
            return
        parties = {
            "sender": {"address": address, "subaccountNumber": sender},
            "recipient": {"address": address, "subaccountNumber": recipient},
        }
        for number, kind, delta in (
            (sender, "TRANSFER_OUT", -amount),
            (recipient, "TRANSFER_IN", amount),
        ):
            self.subaccounts[number].usdc += delta
            self.subaccounts[number].updated_height = self.height
            pending = self._pending_for(number)
            pending.asset = True
            pending.transfers.append({**parties, **base, "type": kind, **tail})

    def _prune_orders(self) -> None:
        for sub in self.subaccounts.values():
            closed = [o for o in sub.orders.values() if o.status not in ("OPEN", "UNTRIGGERED")]
            for order in closed[:-200]:
                del sub.orders[order.order_id]

    def _publish_sub(self, number: int, contents: Dict[str, Any], out: List[Publication]) -> None:
        address = self.demo_address
        out.append(Publication("v4_subaccounts", f"{address}/{number}", contents))
        parent = number % 128
        parent_contents = contents
        transfers = contents.get("transfers")
        if transfers is not None:
            sender = transfers["sender"].get("subaccountNumber")
            recipient = transfers["recipient"].get("subaccountNumber")
            same_owner = transfers["sender"]["address"] == transfers["recipient"]["address"]
            if (
                same_owner
                and sender is not None
                and recipient is not None
                and sender % 128 == parent
                and recipient % 128 == parent
            ):
                parent_contents = {k: v for k, v in contents.items() if k != "transfers"}
        out.append(
            Publication(
                "v4_parent_subaccounts",
                f"{address}/{parent}",
                parent_contents,
                subaccount_number=number,
            )
        )

    def _flush_subaccounts(self, out: List[Publication]) -> None:
        for number in sorted(self._pending):
            pending = self._pending[number]
            sub = self.subaccounts[number]
            contents: Dict[str, Any] = {}
            if pending.positions:
                contents["perpetualPositions"] = list(pending.positions.values())
            if pending.asset:
                contents["assetPositions"] = [sub.ws_asset()]
            if pending.orders:
                contents["orders"] = [sub.ws_order(o) for o in pending.orders.values()]
            if pending.fills:
                contents["fills"] = pending.fills
            transfers = pending.transfers
            if transfers:
                contents["transfers"] = transfers[0]
            contents["blockHeight"] = str(self.height)
            self._publish_sub(number, contents, out)
            for extra in transfers[1:]:
                self._publish_sub(
                    number, {"transfers": extra, "blockHeight": str(self.height)}, out
                )
        self._pending = {}
