"""Generated decoders show their own source in tracebacks (registered with ``linecache``)."""

from __future__ import annotations

import linecache
import traceback

import pytest

from dydx_ws.models import Order, Subaccount, Trade
from dydx_ws.protocol._decoders import decoder_for, locate_error


def test_a_traceback_through_a_generated_decoder_shows_the_failing_line() -> None:
    with pytest.raises(KeyError) as info:
        decoder_for(Order)({"id": "1"})  # "status" is required
    frames = traceback.extract_tb(info.value.__traceback__)
    generated = frames[-1]
    assert generated.filename.startswith("<dydx_ws generated decoder dydx_ws.models.")
    assert "Order" in generated.filename
    assert generated.line == "v = d['status']"
    text = "".join(traceback.format_exception(info.type, info.value, info.tb))
    assert "    v = d['status']\n" in text


def test_every_generated_function_has_a_file_name_of_its_own() -> None:
    def failing_file(cls: type, data: object) -> str:
        with pytest.raises(Exception) as info:
            decoder_for(cls)(data)
        return traceback.extract_tb(info.value.__traceback__)[-1].filename

    names = {failing_file(Order, {}), failing_file(Trade, {})}
    assert len(names) == 2 and all("generated decoder" in n for n in names)


def test_locating_errors_does_not_grow_the_line_cache() -> None:
    bad = {
        "address": "dydx1x",
        "subaccountNumber": 0,
        "equity": "1",
        "freeCollateral": "1",
        "openPerpetualPositions": {"BTC-USD": 5},  # not an object: found inside the dict
    }
    decoder_for(Subaccount)  # built (and registered) once
    before = len(linecache.cache)
    for _ in range(20):
        with pytest.raises(TypeError):
            decoder_for(Subaccount)(bad)
        assert locate_error(Subaccount, bad)[0] == "openPerpetualPositions.BTC-USD"
    assert len(linecache.cache) == before
