"""The log source (indexer/rpc.py) against a real anvil, directly and through a misbehaving proxy."""

# ruff: noqa: F811  (the fixtures imported from harness are requested as test parameters)

from __future__ import annotations

from typing import Any

import pytest

from chain.anvil import dev_accounts
from chain.contracts import Protocol
from chain.deploy import DeployOptions, ProtocolParams, deploy
from chain.tx import TxSender
from indexer.rpc import LogSource, RpcUnavailable, _is_too_large, _RpcAnswerError
from tests.conftest import free_port
from tests.indexer.activity import Activity
from tests.indexer.faulty_rpc import FaultyRpc
from tests.indexer.harness import Chain, chain, some_activity  # noqa: F401

pytestmark = pytest.mark.anvil


def _source(protocol: Protocol, urls: list[str], **kwargs: Any) -> LogSource:
    kwargs.setdefault("backoff_base", 0.001)
    return LogSource(
        urls=urls,
        addresses=[protocol.compute.address, protocol.market.address],
        **kwargs,
    )


def _truth(chain: Chain, protocol: Protocol, start: int, end: int) -> list[tuple[int, int, str]]:
    logs = chain.rpc(
        "eth_getLogs",
        [
            {
                "address": [protocol.compute.address, protocol.market.address],
                "fromBlock": hex(start),
                "toBlock": hex(end),
            }
        ],
    )
    return [(int(lg["blockNumber"], 16), int(lg["logIndex"], 16), lg["blockHash"]) for lg in logs]


def _drain(
    source: LogSource, start: int, end: int
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int]]]:
    """Fetch start..end as the runner does (range after range); returns the logs and the ranges."""
    got: list[tuple[int, int, str]] = []
    ranges: list[tuple[int, int]] = []
    while start <= end:
        fetched = source.fetch(start, end)
        ranges.append((fetched.start, fetched.end))
        for block in fetched.blocks:
            got += [(lg["blockNumber"], lg["logIndex"], lg["blockHash"]) for lg in block.logs]
        start = fetched.end + 1
    return got, ranges


@pytest.fixture(scope="module")
def protocol(chain: Chain) -> Protocol:
    """One deployment with some history for the whole module (these tests only read it)."""
    keys = dev_accounts(10)
    deployment = deploy(
        chain.w3,
        TxSender(chain.w3, keys[0]),
        DeployOptions(treasury=keys[9].address, params=ProtocolParams.local()),
    )
    protocol = Protocol.load(chain.w3, deployment)
    some_activity(Activity(protocol, chain.accounts), chain, rounds=4, per_block=3)
    return protocol


@pytest.fixture(scope="module")
def history(protocol: Protocol, chain: Chain) -> tuple[int, int]:
    return protocol.deployment.deploy_block, chain.w3.eth.block_number


class TestLogSource:
    def test_fetch_returns_every_log_with_verified_headers(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        start, end = history
        fetched = _source(protocol, [chain.url]).fetch(start, end)
        assert (fetched.start, fetched.end) == (start, end)
        got = [(lg["blockNumber"], lg["logIndex"], lg["blockHash"]) for b in fetched.blocks for lg in b.logs]
        assert got == _truth(chain, protocol, start, end)
        for block in fetched.blocks:
            header = chain.w3.eth.get_block(block.ref.number)
            assert block.ref.hash == "0x" + bytes(header["hash"]).hex()
            assert block.ref.parent_hash == "0x" + bytes(header["parentHash"]).hex()
        numbers = [b.ref.number for b in fetched.blocks]
        assert numbers[0] == start and numbers[-1] == end  # first and last headers always come back

    def test_dense_window_gets_every_header(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        start, end = history
        fetched = _source(protocol, [chain.url]).fetch(start, end, dense_from=end - 5)
        numbers = {b.ref.number for b in fetched.blocks}
        assert set(range(end - 5, end + 1)) <= numbers

    def test_too_many_results_halves_the_range_then_grows_it_back(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        start, end = history
        with FaultyRpc(chain.url, max_logs_span=4) as proxy:
            source = _source(protocol, [proxy.url], initial_span=64, max_span=64, grow_after=1)
            got, ranges = _drain(source, start, end)
            assert proxy.injected == {}  # the span refusals are the proxy's steady rule, not a script
        assert got == _truth(chain, protocol, start, end)
        assert all(b - a + 1 <= 4 for a, b in ranges)
        assert len(ranges) >= (end - start + 1) // 4

    def test_span_grows_after_successes(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        start, end = history
        with FaultyRpc(chain.url) as proxy:
            proxy.plan(["too_many", "too_many", "too_many"])
            source = _source(protocol, [proxy.url], initial_span=16, max_span=16, grow_after=1)
            first = source.fetch(start, end)
            assert first.end - first.start + 1 == 2  # 16 -> 8 -> 4 -> 2
            second = source.fetch(first.end + 1, end)
            assert second.end - second.start + 1 == min(4, end - first.end)
            assert source.span >= 8
            assert proxy.injected["too_many"] == 3

    def test_timeout_shrinks_the_range_and_retries(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        start, end = history
        with FaultyRpc(chain.url, delay_s=1.0, only_methods=frozenset({"eth_getLogs"})) as proxy:
            proxy.plan(["timeout"])
            source = _source(protocol, [proxy.url], timeout=0.3, initial_span=16)
            got, ranges = _drain(source, start, end)
            assert proxy.injected["timeout"] == 1
        assert got == _truth(chain, protocol, start, end)
        assert ranges[0][1] - ranges[0][0] + 1 == 8

    def test_lagging_node_empty_answer_is_retried_not_skipped(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        """A load-balanced backend that has not seen the range answers [] for it: the source
        must notice the node does not have the range's last block, and ask again."""
        start, end = history
        with FaultyRpc(
            chain.url, lag_blocks=end - start + 5, only_methods=frozenset({"eth_getLogs"})
        ) as proxy:
            proxy.plan(["lag", "lag", "lag"])
            got, _ = _drain(_source(protocol, [proxy.url]), start, end)
            assert proxy.injected["lag"] == 3
        assert got == _truth(chain, protocol, start, end)
        assert got  # there was something to lose

    def test_logs_naming_an_unknown_block_hash_are_retried(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        start, end = history
        with FaultyRpc(chain.url, only_methods=frozenset({"eth_getLogs"})) as proxy:
            proxy.plan(["bad_hash", "bad_hash"])
            got, _ = _drain(_source(protocol, [proxy.url]), start, end)
            assert proxy.injected["bad_hash"] == 2
        assert got == _truth(chain, protocol, start, end)

    def test_errors_fail_over_to_the_next_url(
        self, chain: Chain, protocol: Protocol, history: tuple[int, int]
    ) -> None:
        start, end = history
        with FaultyRpc(chain.url) as bad, FaultyRpc(chain.url) as good:
            bad.plan(["http500", "rpc_error", "drop", "http429"] * 5)
            source = _source(protocol, [bad.url, good.url], max_attempts=6)
            assert source.head() == chain.w3.eth.block_number
            got, _ = _drain(source, start, end)
            assert bad.injected["http500"] >= 1
            assert good.requests_seen > 0
        assert got == _truth(chain, protocol, start, end)

    def test_every_url_down_raises_rpc_unavailable_naming_them(self, protocol: Protocol) -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        delays: list[float] = []
        source = _source(
            protocol, [dead], max_attempts=4, backoff_base=0.5, backoff_max=1.0, sleep=delays.append
        )
        with pytest.raises(RpcUnavailable) as info:
            source.fetch(1, 10)
        assert dead in str(info.value)
        assert info.value.attempts == 4
        # Jittered exponential backoff: each delay below its cap (0.5, 1.0, 1.0).
        assert len(delays) == 3
        assert all(0 <= d <= cap for d, cap in zip(delays, [0.5, 1.0, 1.0], strict=True))

    def test_finalized_tag_with_fallback_to_confirmations(self, chain: Chain, protocol: Protocol) -> None:
        chain.rpc("anvil_mine", [hex(70)])
        head = chain.w3.eth.block_number
        tag = int(chain.w3.eth.get_block("finalized")["number"])
        assert _source(protocol, [chain.url], finality="tag").finalized() == tag
        assert (
            _source(protocol, [chain.url], finality="confirmations", confirmations=5).finalized(head)
            == head - 5
        )
        with FaultyRpc(chain.url, no_finalized_tag=True) as proxy:
            source = _source(protocol, [proxy.url], finality="tag", confirmations=7)
            assert source.finalized(head) == head - 7


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-32005, "query returned more than 10000 results"),
        (-32602, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range"),
        (-32000, "block range is too wide"),
        (-32600, "exceed maximum block range: 5000"),
        (-32000, "query timeout exceeded"),
        (-32000, "Query returned more than 20000 results. Try with this block range [0x1, 0x2]."),
        (-32011, "response size should not greater than 10000000 bytes"),
        (-32005, "limit exceeded"),
    ],
)
def test_provider_range_errors_are_recognised(code: int, message: str) -> None:
    assert _is_too_large(_RpcAnswerError(code, message))


@pytest.mark.parametrize("message", ["execution reverted", "header not found", "internal error"])
def test_other_errors_are_not_range_errors(message: str) -> None:
    assert not _is_too_large(_RpcAnswerError(-32000, message))
