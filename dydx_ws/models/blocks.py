"""Block height and server time (docs/protocol.md §3.7, §5.5, §5.6)."""

from dataclasses import dataclass
from datetime import datetime

from ._base import WireModel, height, timestamp


@dataclass
class BlockHeight(WireModel):
    """Body of ``GET /v4/height`` and the ``v4_block_height`` snapshot."""

    height: int = height()
    time: datetime = timestamp()


@dataclass
class BlockHeightUpdate(WireModel):
    """One ``v4_block_height`` update (the wire calls the field ``blockHeight`` here)."""

    block_height: int = height()
    time: datetime = timestamp()


@dataclass
class ServerTime(WireModel):
    """Body of ``GET /v4/time``: ``epoch`` is float seconds."""

    iso: datetime = timestamp()
    epoch: float = 0.0
