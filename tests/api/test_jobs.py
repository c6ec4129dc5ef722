"""/jobs, /jobs/{id} and /jobs/{id}/history: what a dApp's job board and job page show, checked
against the contract's own getters and the logs it emitted."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.indexer.history import ETH, JOB_STATES, onchain_job

pytestmark = pytest.mark.anvil

ZERO = "0x0000000000000000000000000000000000000000"


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


class TestJobPage:
    def test_every_job_matches_the_contract(self, api: Api) -> None:
        compute = api.history.protocol.compute
        for job_id in range(1, int(compute.functions.jobCount().call()) + 1):
            chain = onchain_job(api.history.protocol, job_id)
            job = api.ok(f"/jobs/{job_id}")["data"]
            assert job["state"] == JOB_STATES[chain["state"]], job_id
            assert (job["client"], job["asset"]) == (chain["client"], chain["asset"])
            assert job["provider"] == (None if chain["provider"] == ZERO else chain["provider"])
            assert int(job["amount"]) == chain["amount"]
            assert job["spec_hash"] == _hex(chain["spec_hash"])
            deadlines = job["deadlines"]
            assert deadlines["bid"] == chain["bid_deadline"]
            assert deadlines["accept"] == chain["accept_deadline"]
            for ours, theirs in (
                ("execution", "execution_deadline"),
                ("challenge_end", "challenge_end"),
                ("dispute", "dispute_deadline"),
            ):
                assert (deadlines[ours] or 0) == chain[theirs], (job_id, ours)
            if chain["result_hash"] != b"\x00" * 32:
                assert job["result"]["result_hash"] == _hex(chain["result_hash"])
                assert job["result"]["result_cid"] == "bafkres"
            else:
                assert job["result"] is None

    def test_bids_and_assignment(self, api: Api) -> None:
        job = api.ok(f"/jobs/{api.history.jobs['finalized']}")["data"]
        p1 = api.who("p1")
        # p1 bid twice (the second replaces the first): one bid, counted twice, accepted.
        assert [(b["provider"], b["price"], b["placed_count"], b["accepted"]) for b in job["bids"]] == [
            (p1, str(6 * ETH // 10), 2, True)
        ]
        assert job["assignment"] == {"provider": p1, "price": str(6 * ETH // 10)}
        assert job["bid_count"] == 2 and not job["bids_truncated"]
        settlement = job["settlement"]
        # Paid price - 3% fee; the escrow above the price went back to the client.
        assert int(settlement["provider_payout"]) + int(settlement["fee"]) == 6 * ETH // 10
        assert int(settlement["fee"]) == -(-6 * ETH // 10 * 300 // 10_000)
        assert int(settlement["client_refund"]) == ETH - 6 * ETH // 10
        assert settlement["completed_by_client"] is False
        assert (
            api.ok(f"/jobs/{api.history.jobs['accepted']}")["data"]["settlement"]["completed_by_client"]
            is True
        )

    def test_a_resolved_dispute(self, api: Api) -> None:
        job = api.ok(f"/jobs/{api.history.jobs['resolved']}")["data"]
        price = 8 * ETH // 10
        assert job["state"] == "resolved"
        assert job["dispute"]["reason_cid"] == "bafkreason"
        assert job["dispute"]["arbiter"] == api.who("admin")
        assert job["dispute"]["provider_bps"] == 6000
        share = price * 6000 // 10_000
        s = job["settlement"]
        assert int(s["provider_payout"]) + int(s["fee"]) == share
        assert int(s["client_refund"]) == (ETH - price) + (price - share)

    def test_a_dispute_that_timed_out_and_a_failure(self, api: Api) -> None:
        timed_out = api.ok(f"/jobs/{api.history.jobs['timed_out']}")["data"]
        assert timed_out["state"] == "resolved" and timed_out["dispute"]["arbiter"] is None
        assert timed_out["settlement"]["provider_payout"] is None
        failed = api.ok(f"/jobs/{api.history.jobs['failed']}")["data"]
        assert failed["state"] == "failed" and failed["provider"] == api.who("p3")
        assert int(failed["settlement"]["slashed"]) > 0 and failed["result"] is None

    def test_unknown_job_is_404(self, api: Api) -> None:
        for path in ("/jobs/999999", "/jobs/999999/history"):
            response = api.get(path)
            assert response.status_code == 404
            assert response.json()["error"] == "not_found" and "999999" in response.json()["message"]


class TestJobBoard:
    def test_newest_posted_first_and_oldest_first(self, api: Api) -> None:
        count = int(api.history.protocol.compute.functions.jobCount().call())
        assert [j["job_id"] for j in api.all("/jobs")] == list(range(count, 0, -1))
        assert [j["job_id"] for j in api.all("/jobs", sort="posted_asc", limit=3)] == list(
            range(1, count + 1)
        )

    def test_filters(self, api: Api) -> None:
        jobs = api.history.jobs

        def ids(**params: object) -> set[int]:
            return {j["job_id"] for j in api.all("/jobs", **params)}

        assert ids(status="open") == {jobs["old_window"], jobs["new_window"]}
        assert ids(status="failed") == {jobs["failed"]}
        assert ids(status="resolved") == {jobs["resolved"], jobs["timed_out"]}
        assert ids(provider=api.who("p3")) == {jobs["failed"]}
        # Addresses in any case.
        assert ids(provider=api.who("p3").lower()) == ids(provider=api.who("p3").upper().replace("0X", "0x"))
        assert ids(client=api.who("client")) == set(jobs.values())
        assert ids(client=api.who("buyer")) == set()
        assert ids(asset=api.history.token_asset) == {jobs["erc20"]}
        # The accepted price once assigned, the escrow while open.
        assert ids(min_price=str(15 * ETH // 10)) == {jobs["erc20"]}
        assert ids(max_price=str(4 * ETH // 10)) == {jobs["timed_out"], jobs["failed"]}
        assert ids(min_price=str(ETH), max_price=str(ETH)) == {
            jobs["cancelled"],
            jobs["expired"],
            jobs["old_window"],
            jobs["new_window"],
        }
        assert ids(min_price=str(2 * ETH), max_price=str(ETH)) == set()
        assert ids(status="completed", provider=api.who("p1")) == {
            jobs["finalized"],
            jobs["accepted"],
            jobs["erc20"],
        }

    def test_paging_walks_every_job_once(self, api: Api) -> None:
        full = [j["job_id"] for j in api.ok("/jobs", limit=500)["data"]]
        for limit in (1, 3, 4):
            assert [j["job_id"] for j in api.all("/jobs", limit=limit)] == full
        first = api.ok("/jobs", limit=4)
        assert len(first["data"]) == 4 and first["next_cursor"]


class TestJobHistory:
    def test_history_lists_the_jobs_events_with_provenance(self, api: Api) -> None:
        job_id = api.history.jobs["failed"]
        events = api.all(f"/jobs/{job_id}/history", limit=2)
        assert [e["event"] for e in events] == [
            "JobPosted",
            "BidPlaced",
            "BidPlaced",
            "JobAssigned",
            "ProviderSlashed",
            "JobFailed",
        ]
        on_chain = [e for e in api.history.events if getattr(e, "job_id", None) == job_id]
        assert [(e["tx_hash"], e["log_index"], e["block_hash"], e["block_number"]) for e in events] == [
            (e.tx_hash, e.log_index, e.block_hash, e.block_number) for e in on_chain
        ]
        assert all(e["args"]["job_id"] == str(job_id) and not e["orphaned"] for e in events)
