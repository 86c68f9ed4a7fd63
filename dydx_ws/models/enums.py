"""String enums of the Indexer (docs/protocol.md §3.9). All are open: unknown values are kept."""

from ._base import OpenEnum


class CandleResolution(OpenEnum):
    """Candle resolutions; the value is the wire string (``"1MIN"`` ...)."""

    ONE_MINUTE = "1MIN"
    FIVE_MINUTES = "5MINS"
    FIFTEEN_MINUTES = "15MINS"
    THIRTY_MINUTES = "30MINS"
    ONE_HOUR = "1HOUR"
    FOUR_HOURS = "4HOURS"
    ONE_DAY = "1DAY"


class OrderSide(OpenEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderStatus(OpenEnum):
    OPEN = "OPEN"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    BEST_EFFORT_CANCELED = "BEST_EFFORT_CANCELED"
    UNTRIGGERED = "UNTRIGGERED"
    ERROR = "ERROR"
    BEST_EFFORT_OPENED = "BEST_EFFORT_OPENED"


class OrderType(OpenEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_LIMIT = "STOP_LIMIT"
    STOP_MARKET = "STOP_MARKET"
    TRAILING_STOP = "TRAILING_STOP"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TWAP = "TWAP"
    TWAP_SUBORDER = "TWAP_SUBORDER"


class TimeInForce(OpenEnum):
    GTT = "GTT"
    FOK = "FOK"
    IOC = "IOC"


class PositionSide(OpenEnum):
    LONG = "LONG"
    SHORT = "SHORT"


class PositionStatus(OpenEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    LIQUIDATED = "LIQUIDATED"


class Liquidity(OpenEnum):
    TAKER = "TAKER"
    MAKER = "MAKER"


class FillType(OpenEnum):
    LIMIT = "LIMIT"
    LIQUIDATED = "LIQUIDATED"
    LIQUIDATION = "LIQUIDATION"
    DELEVERAGED = "DELEVERAGED"
    OFFSETTING = "OFFSETTING"
    TWAP_SUBORDER = "TWAP_SUBORDER"


class TradeType(OpenEnum):
    LIMIT = "LIMIT"
    LIQUIDATED = "LIQUIDATED"
    DELEVERAGED = "DELEVERAGED"
    TWAP_SUBORDER = "TWAP_SUBORDER"


class TransferType(OpenEnum):
    TRANSFER_IN = "TRANSFER_IN"
    TRANSFER_OUT = "TRANSFER_OUT"
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"


class MarketStatus(OpenEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CANCEL_ONLY = "CANCEL_ONLY"
    POST_ONLY = "POST_ONLY"
    INITIALIZING = "INITIALIZING"
    FINAL_SETTLEMENT = "FINAL_SETTLEMENT"


class MarketType(OpenEnum):
    CROSS = "CROSS"
    ISOLATED = "ISOLATED"
