"""What comlink reads from the simulated state: market objects and their trading diffs, order
book, trades, subaccounts and orders, as REST serves them and the stream builds on them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .account import DemoOrder, Subaccount
from .jsutil import dec_str
from .sim_base import ACTIVE, MarketState, SimulatorBase


class ComlinkViews(SimulatorBase):
    """The read side of :class:`~dydx_ws.emulator.simulator.MarketSimulator`."""

    # ----- markets --------------------------------------------------------------------------

    @staticmethod
    def _trading_fields(state: MarketState) -> Dict[str, Any]:
        """The fields roundtable's market updater diffs (also part of the REST market object)."""
        spec = state.spec
        return {
            "priceChange24H": dec_str(
                spec.price_dec(state.oracle_ticks) - spec.price_dec(spec.initial_price_ticks)
            ),
            "volume24H": dec_str(state.volume_24h),
            "trades24H": state.trades_24h,
            "nextFundingRate": dec_str(state.next_funding_rate),
            "openInterest": dec_str(state.open_interest),
            "baseOpenInterest": dec_str(state.open_interest),
        }

    def _trading_diff(self) -> Dict[str, Any]:
        """Roll each market's funding rate, then publish only the fields that changed."""
        diff: Dict[str, Any] = {}
        for ticker, state in self.markets.items():
            if state.status != ACTIVE:  # no funding, no volume: nothing changes any more
                continue
            state.next_funding_rate = Decimal(self.rng.randint(-50, 50)).scaleb(-8)
            fields = self._trading_fields(state)
            changed = {k: v for k, v in fields.items() if state.sent_trading.get(k) != v}
            state.sent_trading = fields
            if changed:
                diff[ticker] = {"id": str(state.spec.clob_pair_id), **changed}
        return diff

    # ----- comlink reads ----------------------------------------------------------------------

    def market_object(self, ticker: str) -> Dict[str, Any]:
        """comlink's ``PerpetualMarketResponseObject`` in field order (docs/protocol.md §5.1)."""
        state = self.markets[ticker]
        spec = state.spec
        trading = self._trading_fields(state)
        return {
            "clobPairId": str(spec.clob_pair_id),
            "ticker": ticker,
            "status": state.status,
            "oraclePrice": spec.price(state.oracle_ticks),
            "priceChange24H": trading["priceChange24H"],
            "volume24H": trading["volume24H"],
            "trades24H": trading["trades24H"],
            "nextFundingRate": trading["nextFundingRate"],
            "initialMarginFraction": spec.initial_margin_fraction,
            "maintenanceMarginFraction": spec.maintenance_margin_fraction,
            "openInterest": trading["openInterest"],
            "atomicResolution": spec.atomic_resolution,
            "quantumConversionExponent": spec.quantum_conversion_exponent,
            "tickSize": spec.tick_size,
            "stepSize": spec.step_size,
            "stepBaseQuantums": spec.step_base_quantums,
            "subticksPerTick": spec.subticks_per_tick,
            "marketType": spec.market_type,
            "openInterestLowerCap": "0" if spec.market_type == "CROSS" else "500000",
            "openInterestUpperCap": "0" if spec.market_type == "CROSS" else "1000000",
            "baseOpenInterest": trading["baseOpenInterest"],
            "defaultFundingRate1H": "0",
        }

    def trading_object(self, ticker: str) -> Dict[str, Any]:
        """ender's full ``TradingPerpetualMarketMessage`` (wire key order), as it publishes on
        ``v4_markets`` when a market is created or its status changes."""
        state = self.markets[ticker]
        spec = state.spec
        trading = self._trading_fields(state)
        return {
            "id": str(spec.clob_pair_id),
            "clobPairId": str(spec.clob_pair_id),
            "ticker": ticker,
            "marketId": spec.clob_pair_id,
            "status": state.status,
            "quantumConversionExponent": spec.quantum_conversion_exponent,
            "atomicResolution": spec.atomic_resolution,
            "subticksPerTick": spec.subticks_per_tick,
            "stepBaseQuantums": spec.step_base_quantums,
            "marketType": spec.market_type,
            "initialMarginFraction": spec.initial_margin_fraction,
            "maintenanceMarginFraction": spec.maintenance_margin_fraction,
            "openInterestLowerCap": "0" if spec.market_type == "CROSS" else "500000",
            "openInterestUpperCap": "0" if spec.market_type == "CROSS" else "1000000",
            "tickSize": spec.tick_size,
            "stepSize": spec.step_size,
            "priceChange24H": trading["priceChange24H"],
            "volume24H": trading["volume24H"],
            "trades24H": trading["trades24H"],
            "nextFundingRate": trading["nextFundingRate"],
            "openInterest": trading["openInterest"],
            "baseOpenInterest": trading["baseOpenInterest"],
            "defaultFundingRate1H": "0",
        }

    def orderbook_view(self, ticker: str, limit: int) -> Dict[str, Any]:
        state = self.markets[ticker]
        spec = state.spec
        bids, asks = state.book.view(limit)
        return {
            "bids": [{"price": spec.price(p), "size": spec.size(s)} for p, s in bids],
            "asks": [{"price": spec.price(p), "size": spec.size(s)} for p, s in asks],
        }

    def trades(
        self,
        ticker: str,
        limit: int,
        before_height: Optional[int] = None,
        before_time: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for height, trade in reversed(self.markets[ticker].trades):
            if before_height is not None and height > before_height:
                continue
            if before_time is not None and trade["createdAt"] > before_time:
                continue
            out.append(trade)
            if len(out) >= limit:
                break
        return out

    def all_trades(self, ticker: str) -> List[Dict[str, Any]]:
        return [t for _, t in reversed(self.markets[ticker].trades)]

    def subaccount_object(self, address: str, number: int) -> Optional[Dict[str, Any]]:
        if address != self.demo_address or number not in self.subaccounts:
            return None
        return self.subaccounts[number].rest_subaccount(self.oracle(), self.imf(), self.height)

    def children(self, address: str, parent: int) -> List[Subaccount]:
        if address != self.demo_address:
            return []
        return [s for n, s in sorted(self.subaccounts.items()) if n % 128 == parent]

    def parent_subaccount_object(self, address: str, parent: int) -> Optional[Dict[str, Any]]:
        children = self.children(address, parent)
        if not children:
            return None
        oracle, imf = self.oracle(), self.imf()
        return {
            "address": address,
            "parentSubaccountNumber": parent,
            "equity": dec_str(sum((c.equity(oracle) for c in children), Decimal(0))),
            "freeCollateral": dec_str(
                sum((c.free_collateral(oracle, imf) for c in children), Decimal(0))
            ),
            "childSubaccounts": [c.rest_subaccount(oracle, imf, self.height) for c in children],
        }

    def orders(
        self,
        subs: Sequence[Subaccount],
        statuses: Optional[Sequence[str]],
        ticker: Optional[str],
        limit: int,
        good_til_block_after: Optional[int] = None,
    ) -> List[Dict[str, Any]]:
        rows: List[Tuple[int, int, Subaccount, DemoOrder]] = []
        for sub in subs:
            for order in sub.orders.values():
                if statuses and order.status not in statuses:
                    continue
                if ticker is not None and order.ticker != ticker:
                    continue
                if good_til_block_after is not None and (
                    order.good_til_block is None or order.good_til_block <= good_til_block_after
                ):
                    continue
                rows.append((order.created_height, order.client_id, sub, order))
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        return [sub.rest_order(order) for _, _, sub, order in rows[:limit]]
