"""The agent's decision loop: watch the chain, bid, run assigned jobs in the sandbox, post the
result hash, finalize after the challenge window, and withdraw.

Every transition is journaled (agent/journal.py) before the transaction that makes it, and the
on-chain state is read before every transaction, so a restart after a kill -9 at any instant
never bids twice, never re-runs a job whose result is posted, and never submits twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

from web3 import Web3

from agent.bidding import NATIVE, Bid, Capacity, PricePolicy, decide
from agent.errors import AgentError, InvalidJobSpec, SpecHashMismatch
from agent.jobspec import MAX_SPEC_BYTES, AgentPolicy, JobSpec, parse_spec
from agent.journal import TERMINAL, JobRecord, Journal, Phase
from agent.packing import Entry, PackedOutput, pack
from agent.sandbox import MiB, Sandbox, SandboxRequest, SandboxResult
from agent.watcher import ChainWatcher
from ascendnet.log import get_logger
from ascendnet.storage import ContentStore, StorageError
from chain import events as ev
from chain.contracts import Protocol
from chain.errors import ChainError, ContractReverted
from chain.provenance import ChainEvent
from chain.states import JOB_STATES
from chain.tx import TxSender

RECEIPT_NAME = "ascendnet-receipt.json"


@dataclass(frozen=True)
class OnChainJob:
    job_id: int
    client: str
    asset: str
    provider: str
    state: str
    bid_deadline: int
    accept_deadline: int
    execution_timeout: int
    execution_deadline: int
    challenge_end: int
    amount: int
    spec_hash: bytes
    result_hash: bytes


@dataclass(frozen=True)
class AgentConfig:
    policy: AgentPolicy
    prices: PricePolicy
    max_concurrent_jobs: int = 2
    max_open_bids: int = 8
    confirmations: int = 2
    poll_interval: float = 0.1
    withdraw_threshold: int = 10**15
    host_gpus: int = 0
    #: Seconds between housekeeping passes (finalize, withdraw, retries).
    tick_interval: float = 1.0


class AgentService(TypingProtocol):
    """Other chain work the agent's loop drives besides jobs (agent/delivery.py's KeyDeliverer).
    It keeps its own journal and cursor; the loop retries it on the same errors as the jobs."""

    def recover(self) -> None: ...

    def step(self) -> int: ...


class Agent:
    def __init__(
        self,
        *,
        protocol: Protocol,
        sender: TxSender,
        journal: Journal,
        store: ContentStore,
        sandbox: Sandbox | None,
        config: AgentConfig,
        work_dir: Path,
        services: Sequence[AgentService] = (),
        status_path: Path | None = None,
    ) -> None:
        self.protocol = protocol
        self.w3: Web3 = protocol.w3
        self.sender = sender
        self.me = sender.address
        self.journal = journal
        self.store = store
        self.sandbox = sandbox
        self.config = config
        self.work_dir = work_dir
        self.services = tuple(services)
        self.status_path = status_path
        self._started_at = time.time()
        self._last_status = 0.0
        self.log = get_logger("agent").bind(provider=self.me)
        journal.bind(protocol.deployment.chain_id, self.me, protocol.compute.address)
        self.watcher = ChainWatcher(
            self.w3,
            protocol,
            journal,
            start_block=protocol.deployment.deploy_block,
            confirmations=config.confirmations,
        )
        self._pool = ThreadPoolExecutor(max_workers=config.max_concurrent_jobs, thread_name_prefix="job")
        self._running: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._last_tick = 0.0
        self._handlers: dict[type[ChainEvent], Callable[[Any], None]] = {
            ev.JobPosted: self._on_posted,
            ev.JobAssigned: self._on_assigned,
            ev.ResultSubmitted: self._on_result_submitted,
            ev.JobCompleted: lambda e: self._on_ended(e.job_id, Phase.DONE, "completed"),
            ev.JobCancelled: lambda e: self._on_ended(e.job_id, Phase.LOST, "cancelled by the client"),
            ev.JobExpired: lambda e: self._on_ended(e.job_id, Phase.LOST, "expired"),
            ev.JobFailed: lambda e: self._on_ended(e.job_id, Phase.FAILED, "failed: deadline missed"),
            ev.DisputeResolved: lambda e: self._on_ended(e.job_id, Phase.DONE, "dispute resolved"),
            ev.DisputeTimedOut: lambda e: self._on_ended(e.job_id, Phase.DONE, "dispute timed out"),
            ev.JobDisputed: lambda e: self.log.warning("job.disputed", job_id=e.job_id, tx_hash=e.tx_hash),
        }

    # ================================================================ loop

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set. Transient RPC errors are logged and retried."""
        self.log.info("agent.started", compute=self.protocol.compute.address)
        self.recover()
        failures = 0
        while not stop.is_set():
            try:
                self.step()
                failures = 0
            except (ChainError, ConnectionError, TimeoutError, OSError) as exc:
                failures += 1
                self.log.warning("agent.step_failed", error=str(exc), consecutive=failures)
                stop.wait(min(30.0, self.config.poll_interval * 2**failures))
                continue
            stop.wait(self.config.poll_interval)
        self.shutdown()

    def step(self) -> int:
        """One poll: handle new chain events, then housekeeping when due. Returns events seen."""
        poll = self.watcher.poll()
        for event in poll.events:
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(event)
        self.watcher.commit(poll)
        if time.monotonic() - self._last_tick >= self.config.tick_interval:
            self._last_tick = time.monotonic()
            self.tick()
        seen = len(poll.events) + sum(service.step() for service in self.services)
        if self.status_path is not None and time.monotonic() - self._last_status >= 1.0:
            self._last_status = time.monotonic()
            self.write_status(self.status_path)
        return seen

    def status(self) -> dict[str, Any]:
        """What `ascendnet status` and `ascendnet dev` show about this agent."""
        with self._lock:
            running = sorted(self._running)
        cursor = self.journal.cursor()
        return {
            "provider": self.me,
            "chain_id": self.protocol.deployment.chain_id,
            "pid": os.getpid(),
            "started_at": round(self._started_at, 3),
            "updated_at": round(time.time(), 3),
            "cursor_block": cursor[0] if cursor else None,
            "sandbox": self.sandbox is not None,
            "running_jobs": running,
            "jobs_by_phase": self.journal.counts(),
        }

    def write_status(self, path: Path) -> None:
        """Replace the status file atomically, so readers never see half of it. No fsync: it is
        rewritten every second and a stale copy after a crash is harmless (updated_at says so)."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.status(), sort_keys=True) + "\n")
        os.replace(tmp, path)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=False)
        if self.sandbox is not None:
            self.sandbox.close()
        self.log.info("agent.stopped")

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait for running jobs (tests and benches)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                futures = list(self._running.values())
            if not futures:
                return
            futures[0].result(timeout=max(0.0, deadline - time.monotonic()))
        raise TimeoutError("jobs still running")

    # ================================================================ recovery

    def recover(self) -> None:
        """Reconcile every unfinished journal entry with the chain after a (re)start."""
        if self.sandbox is not None:
            removed = self.sandbox.cleanup_leftovers()
            if removed:
                self.log.info("agent.cleaned_leftovers", removed=removed)
        for rec in self.journal.active():
            try:
                self._reconcile(rec)
            except (ChainError, AgentError, StorageError) as exc:
                self.log.warning(
                    "job.recover_failed", job_id=rec.job_id, phase=str(rec.phase), error=str(exc)
                )
        for service in self.services:
            service.recover()

    def _reconcile(self, rec: JobRecord) -> None:
        job = self._job(rec.job_id)
        self.log.info("job.recovering", job_id=rec.job_id, phase=str(rec.phase), on_chain=job.state)
        if rec.phase in (Phase.SEEN, Phase.BIDDING, Phase.BID):
            if job.state == "Open":
                if rec.phase is Phase.SEEN:
                    self._consider(rec.job_id, self._posted_from_chain(job, rec))
                elif rec.phase is Phase.BIDDING:
                    self._bid(rec.job_id, int(rec.bid_price or 0))
                return
            if job.state == "Assigned" and job.provider == self.me:
                self.journal.advance(rec.job_id, Phase.ASSIGNED)
                self._schedule(rec.job_id)
            elif job.provider == self.me and job.state in ("Submitted", "Completed", "Disputed", "Resolved"):
                self._settle_from_chain(rec.job_id, job)
            else:
                self._end(rec.job_id, Phase.LOST, f"job is {job.state} and not ours")
        elif rec.phase in (Phase.ASSIGNED, Phase.RUNNING):
            if job.state == "Assigned" and job.provider == self.me:
                self._schedule(rec.job_id)
            else:
                self._settle_from_chain(rec.job_id, job)
        elif rec.phase in (Phase.STORED, Phase.SUBMITTING):
            self._submit(rec.job_id)
        # SUBMITTED and FINALIZING are handled by tick().

    def _settle_from_chain(self, job_id: int, job: OnChainJob) -> None:
        if job.state in ("Submitted", "Disputed"):
            self.journal.advance(job_id, Phase.SUBMITTED, result_hash="0x" + job.result_hash.hex())
        elif job.state in ("Completed", "Resolved"):
            self._end(job_id, Phase.DONE, job.state.lower())
        else:
            self._end(job_id, Phase.FAILED, f"job is {job.state}")

    # ================================================================ events

    def _on_posted(self, e: ev.JobPosted) -> None:
        if self.journal.get(e.job_id) is not None:
            return  # seen before (unconfirmed window re-read, or a restart)
        self.journal.observe(e.job_id, spec_cid=e.spec_cid, spec_hash="0x" + e.spec_hash.hex())
        self.log.info("job.seen", job_id=e.job_id, tx_hash=e.tx_hash, amount=e.amount, asset=e.asset)
        self._consider(e.job_id, e)

    def _consider(self, job_id: int, e: ev.JobPosted) -> None:
        try:
            spec = self._fetch_spec(e.spec_cid, e.spec_hash)
        except (SpecHashMismatch, InvalidJobSpec, StorageError) as exc:
            self._end(job_id, Phase.SKIPPED, f"spec refused: {exc}")
            return
        capacity = Capacity(
            open_bids=self.journal.count(Phase.BIDDING, Phase.BID),
            running=self.journal.count(Phase.ASSIGNED, Phase.RUNNING, Phase.STORED, Phase.SUBMITTING),
            max_open_bids=self.config.max_open_bids,
            max_running=self.config.max_concurrent_jobs,
            host_gpus=self.config.host_gpus,
        )
        decision = decide(
            e, spec, policy=self.config.policy, prices=self.config.prices, capacity=capacity, now=self._now()
        )
        if isinstance(decision, Bid):
            self.journal.advance(job_id, Phase.BIDDING, bid_price=decision.price)
            self._bid(job_id, decision.price)
        else:
            self._end(job_id, Phase.SKIPPED, decision.reason)

    def _on_assigned(self, e: ev.JobAssigned) -> None:
        rec = self.journal.get(e.job_id)
        if e.provider != self.me:
            if rec is not None and rec.phase in (Phase.SEEN, Phase.BIDDING, Phase.BID):
                self._end(e.job_id, Phase.LOST, f"assigned to {e.provider}")
            return
        if rec is None:
            rec = self.journal.observe(e.job_id)
        if rec.phase in (Phase.SEEN, Phase.BIDDING, Phase.BID):
            self.journal.advance(e.job_id, Phase.ASSIGNED)
            self.log.info("job.assigned", job_id=e.job_id, tx_hash=e.tx_hash, price=e.price)
            self._schedule(e.job_id)

    def _on_result_submitted(self, e: ev.ResultSubmitted) -> None:
        rec = self.journal.get(e.job_id)
        if e.provider != self.me or rec is None or rec.phase in TERMINAL:
            return
        if rec.phase not in (Phase.SUBMITTED, Phase.FINALIZING):
            self.journal.advance(e.job_id, Phase.SUBMITTED, result_hash="0x" + e.result_hash.hex())

    def _on_ended(self, job_id: int, phase: Phase, reason: str) -> None:
        rec = self.journal.get(job_id)
        if rec is not None and rec.phase not in TERMINAL:
            self._end(job_id, phase, reason)

    # ================================================================ actions

    def _bid(self, job_id: int, price: int) -> None:
        """Send placeBid unless the chain already has our bid."""
        existing = int(self.protocol.compute.functions.bidOf(job_id, self.me).call())
        if existing:
            self.journal.advance(job_id, Phase.BID)
            self.log.info("job.bid_already_on_chain", job_id=job_id, price=existing)
            return
        try:
            sent = self.sender.transact(self.protocol.compute.functions.placeBid(job_id, price))
        except ContractReverted as exc:
            self._end(job_id, Phase.LOST, f"bid refused: {exc.error}")
            return
        self.journal.advance(job_id, Phase.BID, bid_tx=sent.tx_hash)
        self.log.info("job.bid", job_id=job_id, tx_hash=sent.tx_hash, price=price)

    def _schedule(self, job_id: int) -> None:
        with self._lock:
            if job_id in self._running:
                return
            self._running[job_id] = self._pool.submit(self._execute_guarded, job_id)

    def _execute_guarded(self, job_id: int) -> None:
        try:
            self._execute(job_id)
        except Exception as exc:  # noqa: BLE001 - one job's failure must never stop the agent
            self.log.error("job.execution_error", job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running.pop(job_id, None)

    def _execute(self, job_id: int) -> None:
        rec = self.journal.get(job_id)
        assert rec is not None
        job = self._job(job_id)
        if job.state != "Assigned" or job.provider != self.me:
            self._settle_from_chain(job_id, job)
            return
        spec = self._fetch_spec(rec.spec_cid or "", job.spec_hash)
        self.journal.advance(job_id, Phase.RUNNING)
        self.log.info("job.running", job_id=job_id, image=spec.image)
        if self.sandbox is None:
            raise AgentError("no Docker sandbox: this agent cannot run jobs")
        result = self.sandbox.run(self._request(job_id, spec))
        output = result.output if result.succeeded and result.output is not None else self._receipt(result)
        cid = self.store.put(output.tar)
        self.journal.advance(
            job_id, Phase.STORED, result_hash=output.result_hash, result_cid=cid, reason=str(result.status)
        )
        self.log.info(
            "job.executed",
            job_id=job_id,
            status=str(result.status),
            result_hash=output.result_hash,
            result_cid=cid,
            seconds=round(result.duration_seconds, 3),
        )
        self._submit(job_id)

    def _submit(self, job_id: int) -> None:
        rec = self.journal.get(job_id)
        assert rec is not None and rec.result_hash and rec.result_cid
        self.journal.advance(job_id, Phase.SUBMITTING)
        job = self._job(job_id)
        if job.state in ("Submitted", "Completed", "Disputed", "Resolved") and job.provider == self.me:
            # Sent before a crash: the chain has it, so never send it again.
            self.journal.advance(job_id, Phase.SUBMITTED, result_hash="0x" + job.result_hash.hex())
            self.log.info("job.submit_already_on_chain", job_id=job_id)
            return
        if job.state != "Assigned" or job.provider != self.me:
            self._end(job_id, Phase.FAILED, f"cannot submit: job is {job.state}")
            return
        if self._now() > job.execution_deadline:
            self._end(job_id, Phase.FAILED, "execution deadline passed before the result was posted")
            return
        try:
            sent = self.sender.transact(
                self.protocol.compute.functions.submitResult(
                    job_id, bytes.fromhex(rec.result_hash[2:]), rec.result_cid
                )
            )
        except ContractReverted as exc:
            self._end(job_id, Phase.FAILED, f"submitResult refused: {exc}")
            return
        self.journal.advance(job_id, Phase.SUBMITTED, submit_tx=sent.tx_hash)
        self.log.info("job.submitted", job_id=job_id, tx_hash=sent.tx_hash, result_hash=rec.result_hash)

    # ================================================================ housekeeping

    def tick(self) -> None:
        """Finalize jobs past their challenge window, and withdraw what is owed."""
        for rec in self.journal.active():
            if rec.phase in (Phase.SUBMITTED, Phase.FINALIZING):
                self._maybe_finalize(rec)
        self._maybe_withdraw()
        if self.sandbox is not None:
            with self._lock:
                running = {str(job_id) for job_id in self._running}
            reaped = self.sandbox.reap_orphans(running)
            if reaped:
                self.log.info("agent.reaped_orphans", removed=reaped)

    def _maybe_finalize(self, rec: JobRecord) -> None:
        job = self._job(rec.job_id)
        if job.state in ("Completed", "Resolved"):
            self._end(rec.job_id, Phase.DONE, job.state.lower())
            return
        if job.state == "Disputed" or job.state != "Submitted" or self._now() <= job.challenge_end:
            return
        self.journal.advance(rec.job_id, Phase.FINALIZING)
        try:
            sent = self.sender.transact(self.protocol.compute.functions.finalize(rec.job_id))
        except ContractReverted as exc:
            self.log.warning("job.finalize_refused", job_id=rec.job_id, error=str(exc))
            return
        self.journal.advance(rec.job_id, Phase.DONE, finalize_tx=sent.tx_hash, reason="finalized")
        self.log.info("job.finalized", job_id=rec.job_id, tx_hash=sent.tx_hash)

    def _maybe_withdraw(self) -> None:
        for asset in sorted(self.config.prices.assets):
            owed = int(self.protocol.compute.functions.owed(self.me, Web3.to_checksum_address(asset)).call())
            if owed < self.config.withdraw_threshold:
                continue
            try:
                sent = self.sender.transact(
                    self.protocol.compute.functions.withdraw(Web3.to_checksum_address(asset))
                )
            except ContractReverted as exc:
                self.log.warning("agent.withdraw_refused", asset=asset, error=str(exc))
                continue
            self.log.info("agent.withdrew", asset=asset, amount=owed, tx_hash=sent.tx_hash)

    # ================================================================ helpers

    def _end(self, job_id: int, phase: Phase, reason: str) -> None:
        self.journal.advance(job_id, phase, reason=reason)
        self.log.info(f"job.{phase.value}", job_id=job_id, reason=reason)

    def _fetch_spec(self, cid: str, spec_hash: bytes) -> JobSpec:
        raw = self.store.get(cid, sha256=spec_hash, max_bytes=MAX_SPEC_BYTES)
        return parse_spec(raw, expected_sha256=spec_hash, spec_cid=cid)

    def _request(self, job_id: int, spec: JobSpec) -> SandboxRequest:
        staged = self.work_dir / "inputs" / str(job_id)
        inputs: dict[str, Path | bytes] = {}
        for item in spec.inputs:
            target = staged / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            expected = bytes.fromhex(item.sha256[2:]) if item.sha256 else None
            self.store.get_to_file(item.cid, target, sha256=expected)
            inputs[item.path] = target
        r = spec.resources
        return SandboxRequest(
            image=spec.image,
            command=spec.command,
            env=dict(spec.env),
            inputs=inputs,
            cpus=r.cpus,
            memory_bytes=r.memory_mb * MiB,
            gpus=r.gpus,
            timeout_seconds=float(spec.timeout_seconds),
            output_limit_bytes=self.config.policy.max_output_bytes,
            tmp_bytes=max(1, r.disk_mb) * MiB,
            job_id=str(job_id),
        )

    @staticmethod
    def _receipt(result: SandboxResult) -> PackedOutput:
        """What a job that failed inside its limits leaves: a receipt, posted like any result, so
        the client sees what happened and can dispute within the challenge window."""
        doc = {
            "status": str(result.status),
            "exit_code": result.exit_code,
            "detail": result.detail,
            "duration_seconds": round(result.duration_seconds, 3),
            "stdout_tail": result.stdout_tail,
            "stderr_tail": result.stderr_tail,
            "image_id": result.image_id,
        }
        body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        return pack([Entry.file(RECEIPT_NAME, body)])

    def _now(self) -> int:
        """The chain's time: the latest block's timestamp, or the wall clock when that is later
        (a dev chain mines no block while idle, but its next block will carry the wall clock)."""
        block = self.w3.eth.get_block("latest")
        return max(int(block["timestamp"]), int(time.time()))

    def _job(self, job_id: int) -> OnChainJob:
        raw = self.protocol.compute.functions.getJob(job_id).call()
        (client, asset, provider, state, bid_deadline, accept_deadline, execution_timeout, execution_deadline,
         challenge_end, _dispute_deadline, amount, spec_hash, result_hash) = raw  # fmt: skip
        return OnChainJob(
            job_id=job_id,
            client=client,
            asset=asset,
            provider=provider,
            state=JOB_STATES[state],
            bid_deadline=bid_deadline,
            accept_deadline=accept_deadline,
            execution_timeout=execution_timeout,
            execution_deadline=execution_deadline,
            challenge_end=challenge_end,
            amount=amount,
            spec_hash=bytes(spec_hash),
            result_hash=bytes(result_hash),
        )

    def _posted_from_chain(self, job: OnChainJob, rec: JobRecord) -> ev.JobPosted:
        """A JobPosted rebuilt from contract state, for a job seen but not decided before a crash."""
        d = self.protocol.deployment
        return ev.JobPosted(
            contract="ComputeRental",
            address=self.protocol.compute.address,
            chain_id=d.chain_id,
            block_number=0,
            block_hash="0x",
            tx_hash="0x",
            log_index=0,
            job_id=job.job_id,
            client=job.client,
            asset=job.asset,
            amount=job.amount,
            spec_hash=job.spec_hash,
            spec_cid=rec.spec_cid or "",
            bid_deadline=job.bid_deadline,
            execution_timeout=job.execution_timeout,
        )


__all__ = ["NATIVE", "Agent", "AgentConfig", "AgentService", "OnChainJob"]
