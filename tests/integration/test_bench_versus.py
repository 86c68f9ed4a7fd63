"""bench/versus.py and bench/stages.py run end to end with tiny parameters (smoke tests, not
measurements): every client of bench/_clients.py delivers every update in both modes, and the
per-stage profile attributes the SDK's and the reference's samples to their own stages."""

from __future__ import annotations

import re

from tests.helpers.bench_runner import run_bench

NUMBER = r"[\d,]+(?:\.\d+)?"


def test_versus_prints_every_client_and_the_ratios_in_both_modes() -> None:
    out = run_bench("versus.py", "--rounds", "1", "--messages", "1000", "--interval", "0.05")
    for mode in ("flood", "burst"):
        for label in ("order book update", "subaccount update"):
            assert re.search(rf"^{mode}: {label} \(\d+ B\) x1000$", out, re.M), out
    for client in ("sdk", "reference", "bare"):
        assert len(re.findall(rf"^  {client} +{NUMBER} msg/s", out, re.M)) == 2, out
        assert len(re.findall(rf"^  {client} +CPU +{NUMBER} us/msg +latency p50", out, re.M)) == 2
    assert len(re.findall(r"^  sdk / reference throughput [\d.]+x \(>= 0\.7x\)$", out, re.M)) == 2
    assert len(re.findall(r"^  sdk / reference: CPU per message [\d.]+x", out, re.M)) == 2


def test_stages_attributes_samples_to_each_clients_own_stages() -> None:
    out = run_bench("stages.py", "--quick", "--kinds", "account", "--messages", "4000")
    sdk = out.split("\nsdk, account:")[1].split("\nreference, account:")[0]
    reference = out.split("\nreference, account:")[1].split("\nmodels in C")[0]
    assert re.search(r"typed models +[\d.]+% +[\d.]+ us/msg", sdk), out
    assert re.search(r"JSON parse +[\d.]+% +[\d.]+ us/msg", sdk), out
    assert "msgspec" not in sdk and "websockets framing" not in sdk, out
    assert re.search(r"msgspec decode \+ loop +[\d.]+% +[\d.]+ us/msg", reference), out
    assert "typed models" not in reference, out
    assert re.search(r"a C-level decoder would save ~-?[\d.]+ us per frame", out), out


def test_versus_memory_modes_print_rss_and_allocations_per_client() -> None:
    common = ("--interval", "0.05", "--clients", "sdk,reference")
    out = run_bench("versus.py", "--alloc", "--messages", "1000", *common)
    for kind in ("book", "account"):
        for client in ("sdk", "reference"):
            assert re.search(
                rf"^alloc {kind} +{client} +one decoded update holds {NUMBER} B; after 1,000 "
                rf"updates {NUMBER} KiB retained \({NUMBER} B/update\), tracemalloc peak",
                out,
                re.M,
            ), out
    out = run_bench("versus.py", "--soak", "0.5", *common)
    soak = r"^soak .* 5,000 updates over 0.5 s: RSS [\d.]+ MB at the first update, [\d.]+ MB "
    assert len(re.findall(soak + r"after a tenth, [\d.]+ MB at the last$", out, re.M)) == 4, out
