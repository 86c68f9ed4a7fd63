"""The demo account: subaccount balances, perpetual positions, orders and fills.

Holds state only and renders it in two shapes: comlink's REST objects and the websocket
``SubaccountMessageContents`` pieces (positions, asset positions, orders, fills, transfers).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, List, Optional

from .jsutil import dec_str, iso

USDC_ASSET_ID = "0"
_NAMESPACE = uuid.UUID("0f9da948-a6fb-4c45-9edc-4685c3f3317d")

OPEN_STATUSES = ("OPEN", "UNTRIGGERED", "BEST_EFFORT_OPENED")


def stable_uuid(*parts: object) -> str:
    """A deterministic uuid (v5) for ids such as subaccount and position ids."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


@dataclass
class Position:
    position_id: str
    market: str
    size: Decimal  # signed: negative for SHORT
    entry_price: Decimal
    created_at: float
    created_height: int
    max_size: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    sum_open: Decimal = Decimal(0)
    sum_close: Decimal = Decimal(0)
    net_funding: Decimal = Decimal(0)
    status: str = "OPEN"
    exit_price: Optional[Decimal] = None
    closed_at: Optional[float] = None
    closed_height: Optional[int] = None

    @property
    def side(self) -> str:
        return "SHORT" if self.size < 0 else "LONG"


@dataclass
class DemoOrder:
    order_id: str
    client_id: int
    subaccount_number: int
    ticker: str
    clob_pair_id: int
    side: str
    size: Decimal
    price: Decimal
    time_in_force: str
    order_flags: str
    created_height: int
    created_at: float
    good_til_block: Optional[int] = None
    good_til_block_time: Optional[str] = None
    total_filled: Decimal = Decimal(0)
    status: str = "OPEN"
    updated_at: float = 0.0
    updated_height: int = 0
    removal_reason: Optional[str] = None


@dataclass
class Subaccount:
    address: str
    number: int
    usdc: Decimal
    updated_height: int = 0
    positions: Dict[str, Position] = field(default_factory=dict)  # open ones, by market
    closed_positions: List[Position] = field(default_factory=list)
    orders: Dict[str, DemoOrder] = field(default_factory=dict)

    @property
    def subaccount_id(self) -> str:
        return stable_uuid("subaccount", self.address, self.number)

    @property
    def asset_position_id(self) -> str:
        return stable_uuid("asset", self.address, self.number, USDC_ASSET_ID)

    # ----- accounting -------------------------------------------------------------------------

    def equity(self, oracle: Dict[str, Decimal]) -> Decimal:
        return self.usdc + sum((p.size * oracle[m] for m, p in self.positions.items()), Decimal(0))

    def free_collateral(self, oracle: Dict[str, Decimal], imf: Dict[str, Decimal]) -> Decimal:
        used = sum(
            (abs(p.size) * oracle[m] * imf[m] for m, p in self.positions.items()), Decimal(0)
        )
        return self.equity(oracle) - used

    def apply_fill(
        self,
        market: str,
        side: str,
        price: Decimal,
        size: Decimal,
        fee: Decimal,
        now: float,
        height: int,
    ) -> List[Position]:
        """Book a fill; returns the positions that changed (a flip closes one and opens one)."""
        signed = size if side == "BUY" else -size
        self.usdc -= signed * price + fee
        self.updated_height = height
        changed: List[Position] = []
        pos = self.positions.get(market)
        if pos is not None and (pos.size > 0) != (signed > 0):
            closing = min(abs(signed), abs(pos.size))
            direction = Decimal(1) if pos.size > 0 else Decimal(-1)
            pos.realized_pnl += (price - pos.entry_price) * closing * direction
            pos.sum_close += closing
            pos.exit_price = (
                price
                if pos.exit_price is None
                else (
                    (pos.exit_price * (pos.sum_close - closing) + price * closing) / pos.sum_close
                )
            )
            pos.size += closing * (-direction)
            signed += closing * direction
            changed.append(pos)
            if pos.size == 0:
                pos.status = "CLOSED"
                pos.closed_at = now
                pos.closed_height = height
                del self.positions[market]
                self.closed_positions.append(pos)
                del self.closed_positions[:-50]
            pos = self.positions.get(market)
        if signed != 0:
            if pos is None:
                pos = Position(
                    position_id=stable_uuid("position", self.address, self.number, market, height),
                    market=market,
                    size=Decimal(0),
                    entry_price=price,
                    created_at=now,
                    created_height=height,
                )
                self.positions[market] = pos
            total = abs(pos.size) + abs(signed)
            pos.entry_price = (pos.entry_price * abs(pos.size) + price * abs(signed)) / total
            pos.size += signed
            pos.sum_open += abs(signed)
            if abs(pos.size) > abs(pos.max_size):
                pos.max_size = pos.size
            if pos not in changed:
                changed.append(pos)
        return changed

    # ----- websocket shapes -------------------------------------------------------------------

    def ws_position(self, pos: Position, oracle: Decimal) -> Dict[str, Any]:
        return {
            "address": self.address,
            "subaccountNumber": self.number,
            "positionId": pos.position_id,
            "market": pos.market,
            "side": pos.side,
            "status": pos.status,
            "size": dec_str(pos.size),
            "maxSize": dec_str(pos.max_size),
            "netFunding": dec_str(pos.net_funding),
            "entryPrice": dec_str(pos.entry_price),
            "exitPrice": None if pos.exit_price is None else dec_str(pos.exit_price),
            "sumOpen": dec_str(pos.sum_open),
            "sumClose": dec_str(pos.sum_close),
            "realizedPnl": dec_str(pos.realized_pnl),
            "unrealizedPnl": dec_str((oracle - pos.entry_price) * pos.size),
        }

    def ws_asset(self) -> Dict[str, Any]:
        return {
            "address": self.address,
            "subaccountNumber": self.number,
            "positionId": self.asset_position_id,
            "assetId": USDC_ASSET_ID,
            "symbol": "USDC",
            "side": "SHORT" if self.usdc < 0 else "LONG",
            "size": dec_str(abs(self.usdc)),
        }

    def ws_order(self, order: DemoOrder) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "id": order.order_id,
            "subaccountId": self.subaccount_id,
            "clientId": str(order.client_id),
            "clobPairId": str(order.clob_pair_id),
            "side": order.side,
            "size": dec_str(order.size),
            "totalFilled": dec_str(order.total_filled),
            "price": dec_str(order.price),
            "type": "LIMIT",
            "status": order.status,
            "timeInForce": order.time_in_force,
            "reduceOnly": False,
            "orderFlags": order.order_flags,
            "goodTilBlock": None if order.good_til_block is None else str(order.good_til_block),
            "goodTilBlockTime": order.good_til_block_time,
            "createdAtHeight": str(order.created_height),
            "clientMetadata": "0",
            "triggerPrice": None,
            "updatedAt": iso(order.updated_at),
            "updatedAtHeight": str(order.updated_height),
            "postOnly": order.time_in_force == "GTT",
            "ticker": order.ticker,
        }
        if order.removal_reason is not None:
            out["removalReason"] = order.removal_reason
        return out

    # ----- REST shapes ------------------------------------------------------------------------

    def rest_order(self, order: DemoOrder) -> Dict[str, Any]:
        out = self.ws_order(order)
        out.pop("removalReason", None)
        if out["goodTilBlock"] is None:
            del out["goodTilBlock"]
        if out["goodTilBlockTime"] is None:
            del out["goodTilBlockTime"]
        del out["triggerPrice"]
        out["subaccountNumber"] = self.number
        return out

    def rest_position(self, pos: Position, oracle: Decimal) -> Dict[str, Any]:
        return {
            "market": pos.market,
            "status": pos.status,
            "side": pos.side,
            "size": dec_str(pos.size),
            "maxSize": dec_str(pos.max_size),
            "entryPrice": dec_str(pos.entry_price),
            "exitPrice": None if pos.exit_price is None else dec_str(pos.exit_price),
            "realizedPnl": dec_str(pos.realized_pnl),
            "unrealizedPnl": dec_str((oracle - pos.entry_price) * pos.size),
            "createdAt": iso(pos.created_at),
            "createdAtHeight": str(pos.created_height),
            "closedAt": None if pos.closed_at is None else iso(pos.closed_at),
            "sumOpen": dec_str(pos.sum_open),
            "sumClose": dec_str(pos.sum_close),
            "netFunding": dec_str(pos.net_funding),
            "subaccountNumber": self.number,
        }

    def rest_subaccount(
        self, oracle: Dict[str, Decimal], imf: Dict[str, Decimal], latest_height: int
    ) -> Dict[str, Any]:
        return {
            "address": self.address,
            "subaccountNumber": self.number,
            "equity": dec_str(self.equity(oracle)),
            "freeCollateral": dec_str(self.free_collateral(oracle, imf)),
            "openPerpetualPositions": {
                m: self.rest_position(p, oracle[m]) for m, p in self.positions.items()
            },
            "assetPositions": {
                "USDC": {
                    "size": dec_str(abs(self.usdc)),
                    "symbol": "USDC",
                    "side": "SHORT" if self.usdc < 0 else "LONG",
                    "assetId": USDC_ASSET_ID,
                    "subaccountNumber": self.number,
                }
            },
            "marginEnabled": True,
            "updatedAtHeight": str(self.updated_height),
            "latestProcessedBlockHeight": str(latest_height),
        }
