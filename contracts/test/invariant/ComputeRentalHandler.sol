// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "../utils/TestBase.sol";
import {ComputeRental} from "../../src/ComputeRental.sol";
import {TestToken} from "../../src/mocks/TestToken.sol";

/// @dev Drives ComputeRental through bounded random actions by a small cast (3 clients,
/// 3 providers, an arbiter, the admin and two treasuries), in ETH and an allow-listed TestToken,
/// and keeps an independent model of the whole contract: every job's state machine and
/// deadlines, every provider's stake and bonding state, and what every account is owed.
///
/// Picking: actions start at a random existing job and take the first one the model says is
/// eligible, so almost every call does real work. One settling call in eight ("fuzzy") takes
/// the random id as it is and tries the transition whatever its state, and timeouts are tried
/// before their deadline about half the time, and every settlement is retried at once: the model
/// predicts whether each call must succeed or revert, and a disagreement is counted. That is how
/// a double settlement, a move out of a terminal state or a premature timeout would be caught.
/// setUp seeds five jobs (open without and with bids, assigned, submitted, disputed) and
/// `advance` pushes a random live job one step, so even short runs reach every transition.
///
/// Assertions inside a handler would only count as reverts (fail_on_revert = false), so every
/// check made here increments a counter that the invariant functions require to be zero.
///
/// Speed: forge charges roughly 10 us per external call (a cheatcode call somewhat less), and CI
/// runs 10,000 runs per invariant. So the model lives in this contract's storage and the contract is read
/// only where a value must be measured (the owed balances a settlement credits).
contract ComputeRentalHandler is TestBase {
    address internal constant NATIVE = address(0);
    uint256 internal constant BPS = 10_000;

    // job states, as ComputeRental.JobState
    uint8 internal constant S_OPEN = 1;
    uint8 internal constant S_ASSIGNED = 2;
    uint8 internal constant S_SUBMITTED = 3;
    uint8 internal constant S_COMPLETED = 4;
    uint8 internal constant S_CANCELLED = 5;
    uint8 internal constant S_EXPIRED = 6;
    uint8 internal constant S_FAILED = 7;
    uint8 internal constant S_DISPUTED = 8;
    uint8 internal constant S_RESOLVED = 9;

    // settling actions
    uint8 public constant A_COMPLETE_CLIENT = 1; // acceptResult
    uint8 public constant A_FINALIZE = 2; // finalize
    uint8 public constant A_RESOLVE = 3; // resolveDispute
    uint8 public constant A_FAIL = 4; // failJob
    uint8 public constant A_CANCEL = 5; // cancelJob
    uint8 public constant A_EXPIRE = 6; // expireJob
    uint8 public constant A_TIMEOUT = 7; // resolveDisputeTimeout

    // pick filters (other than "in state X")
    uint8 internal constant F_BID = 101;
    uint8 internal constant F_ACCEPT_BID = 102;
    uint8 internal constant F_SUBMIT = 103;
    uint8 internal constant F_DISPUTE = 104;

    ComputeRental public immutable cr;
    TestToken public immutable token;
    address public immutable admin;
    address public immutable arbiter;

    // ComputeRental.Params, snapshotted (the handler changes only the accept window)
    uint256 internal immutable _minStake;
    uint64 internal immutable _unbondingDelay;
    uint256 internal immutable _slashBps;
    uint64 internal immutable _challengeWindow;
    uint64 internal immutable _arbiterTimeout;
    /// The accept window in force; the admin action changes it, and each job keeps the one it
    /// was posted under.
    uint64 public acceptWindow;
    uint32 internal immutable _minExec;
    uint32 internal immutable _maxExec;
    uint64 internal immutable _maxBidWindow;

    address[] internal _clients;
    address[] internal _providers;
    address[] internal _treasuries;
    /// Every account the contract can ever credit: clients, providers, both treasuries.
    address[] internal _accounts;
    address[2] internal _assets;

    // ------------------------------------------------------------------ the model

    /// Packed so the per-job checks, run after every call, read few slots.
    struct MJob {
        address client;
        uint8 state;
        uint8 kind; // the settling action, 0 until settled
        uint8 settleCalls; // successful settling calls
        uint8 settleEvents; // settlement events the contract emitted for the job
        address asset;
        uint64 bidDeadline;
        address provider;
        uint64 acceptDeadline; // bidDeadline + the accept window at posting
        uint64 executionTimeout;
        uint64 executionDeadline;
        uint64 challengeEnd;
        uint64 disputeDeadline;
        uint128 amount; // escrowed now: the maximum while open, the price once assigned
        uint128 escrow; // escrowed at postJob
        uint128 price; // accepted price
        uint128 credited; // measured: all this job credited in its asset (refund at accept included)
    }

    struct MProvider {
        bool registered;
        uint64 unbondingAt;
        uint32 activeJobs;
        uint256 stake;
    }

    uint256 public jobCount;
    mapping(uint256 jobId => MJob) internal _jobs;
    mapping(uint256 jobId => mapping(address provider => uint256)) internal _bids;
    mapping(address provider => MProvider) internal _prov;
    address public treasury;
    bool public paused;

    mapping(address account => mapping(address asset => uint256)) public ghostOwed;

    /// Running totals and mismatch counters, read by the invariants.
    struct Totals {
        uint256[2] escrowed;
        uint256[2] owedSum; // sum of ghostOwed over every account
        uint256[2] deposited;
        uint256[2] withdrawn;
        uint256 owedMismatches; // an account's owed differed from the model right after it changed
        uint256 payoutMismatches; // a settlement credited other amounts than the model or its event says
        uint256 divergences; // a call succeeded/reverted against the model's prediction
        uint256 modelUnderflows;
        uint256 sumCompletedPrice;
        uint256 sumCompletedPayoutPlusFee;
        uint256 sumResolvedPrice;
        uint256 sumResolvedSplit;
    }

    Totals internal _t;

    // coverage counters
    uint256 public nPosted;
    uint256 public nBids;
    uint256 public nAssigned;
    uint256 public nSubmitted;
    uint256 public nDisputed;
    uint256 public nUnbonded;
    uint256 public nWithdrawals;
    uint256 public nExpectedReverts;
    mapping(uint8 action => uint256) public nSettled;

    // the last settlement event decoded
    bool internal _evSeen;
    uint256 internal _evPayout;
    uint256 internal _evFee;
    uint256 internal _evRefund;
    uint256 internal _nonce;

    constructor(ComputeRental cr_, TestToken token_, address admin_, address arbiter_, address treasury2) {
        cr = cr_;
        token = token_;
        admin = admin_;
        arbiter = arbiter_;
        ComputeRental.Params memory p = cr_.params();
        _minStake = p.minStake;
        _unbondingDelay = p.unbondingDelay;
        _slashBps = p.slashBps;
        _challengeWindow = p.challengeWindow;
        _arbiterTimeout = p.arbiterTimeout;
        acceptWindow = p.acceptWindow;
        _minExec = p.minExecutionTimeout;
        _maxExec = p.maxExecutionTimeout;
        _maxBidWindow = p.maxBidWindow;
        _assets[0] = NATIVE;
        _assets[1] = address(token_);
        treasury = cr_.treasury();
        paused = cr_.paused();

        for (uint256 i = 0; i < 3; i++) {
            address c = makeAddr(string.concat("client", _str(i)));
            address pr = makeAddr(string.concat("provider", _str(i)));
            _clients.push(c);
            _providers.push(pr);
            // Fund once, generously, so no action needs a deal or a mint.
            vm.deal(c, 1e30);
            vm.deal(pr, 1e30);
            token_.mint(c, 1e30);
            vm.prank(c);
            token_.approve(address(cr_), type(uint256).max);
        }
        _treasuries.push(treasury);
        _treasuries.push(treasury2);
        for (uint256 i = 0; i < 3; i++) _accounts.push(_clients[i]);
        for (uint256 i = 0; i < 3; i++) _accounts.push(_providers[i]);
        _accounts.push(_treasuries[0]);
        _accounts.push(_treasuries[1]);
    }

    // ================================================================== providers

    /// One of: register (if not registered), add stake, request unbonding (one time in four), complete
    /// unbonding. Completing waits out the delay half the time; called early it must revert.
    function providerAction(uint256 actorSeed, uint256 amountSeed) public {
        address p = _providers[actorSeed % 3];
        MProvider storage m = _prov[p];
        uint256 op = (actorSeed >> 8) % 8;
        if (!m.registered) {
            if (paused) return;
            uint256 stake = bound(amountSeed, _minStake, 5 ether);
            if (!_call(p, stake, abi.encodeCall(ComputeRental.registerProvider, ("ipfs://provider")))) return;
            m.registered = true;
            m.stake = stake;
            _deposit(NATIVE, stake);
        } else if (m.unbondingAt != 0) {
            if (op % 2 == 0) _warpTo(m.unbondingAt);
            bool expectOk = block.timestamp >= m.unbondingAt && m.activeJobs == 0;
            if (!_callExpect(p, 0, abi.encodeCall(ComputeRental.completeUnbond, ()), expectOk)) return;
            uint256 stake = m.stake;
            _checkOwed(p, NATIVE, ghostOwed[p][NATIVE] + stake);
            _creditModel(p, NATIVE, stake);
            _t.escrowed[0] = _sub(_t.escrowed[0], stake);
            delete _prov[p];
            nUnbonded++;
        } else if (op < 2) {
            if (!_call(p, 0, abi.encodeCall(ComputeRental.requestUnbond, ()))) return;
            m.unbondingAt = uint64(block.timestamp) + _unbondingDelay;
        } else {
            if (paused) return;
            uint256 amount = bound(amountSeed, 1, 2 ether);
            if (!_call(p, amount, abi.encodeCall(ComputeRental.addStake, ()))) return;
            m.stake += amount;
            _deposit(NATIVE, amount);
        }
    }

    // ================================================================== jobs

    function postJob(uint256 clientSeed, uint256 amountSeed, uint256 bidWindowSeed, uint256 execSeed) public {
        if (paused) return;
        address c = _clients[clientSeed % 3];
        address asset = _assets[(clientSeed >> 8) % 2];
        uint256 amount = _amount(amountSeed);
        uint64 bidDeadline = uint64(block.timestamp + bound(bidWindowSeed, 1, _maxBidWindow));
        uint32 execTimeout = uint32(bound(execSeed, _minExec, _maxExec));
        bytes memory data = abi.encodeCall(
            ComputeRental.postJob,
            (asset, amount, keccak256(abi.encode(++_nonce)), "ipfs://spec", bidDeadline, execTimeout)
        );
        (bool ok, bytes memory ret) = _callRet(c, asset == NATIVE ? amount : 0, data, true);
        if (!ok) return;
        uint256 id = ++jobCount;
        if (abi.decode(ret, (uint256)) != id) _t.divergences++; // ids are sequential
        MJob storage j = _jobs[id];
        j.client = c;
        j.asset = asset;
        j.state = S_OPEN;
        j.bidDeadline = bidDeadline;
        j.acceptDeadline = bidDeadline + acceptWindow;
        j.executionTimeout = execTimeout;
        j.amount = uint128(amount);
        j.escrow = uint128(amount);
        _deposit(asset, amount);
        nPosted++;
    }

    function placeBid(uint256 jobSeed, uint256 providerSeed, uint256 priceSeed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, F_BID);
        if (id != 0 && !fuzzy) _placeBid(id, providerSeed, priceSeed);
    }

    function acceptBid(uint256 jobSeed, uint256 providerSeed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, F_ACCEPT_BID);
        if (id != 0 && !fuzzy) _acceptBid(id, providerSeed);
    }

    function submitResult(uint256 jobSeed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, F_SUBMIT);
        if (id != 0 && !fuzzy) _submitResult(id);
    }

    function dispute(uint256 jobSeed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, F_DISPUTE);
        if (id != 0 && !fuzzy) _dispute(id);
    }

    // ------------------------------------------------------------------ settling

    /// The client accepts the result, or anyone finalizes it (after the challenge window half
    /// the time; before it, it must revert).
    function completeJob(uint256 jobSeed, uint256 seed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, S_SUBMITTED);
        if (id != 0) _settleAction(id, seed % 2 == 0 ? A_COMPLETE_CLIENT : A_FINALIZE, seed, fuzzy);
    }

    /// The client cancels an open job, or anyone expires it (after the acceptance window half
    /// the time).
    function closeOpenJob(uint256 jobSeed, uint256 seed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, S_OPEN);
        if (id != 0) _settleAction(id, seed % 2 == 0 ? A_CANCEL : A_EXPIRE, seed, fuzzy);
    }

    function failJob(uint256 jobSeed, uint256 seed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, S_ASSIGNED);
        if (id != 0) _settleAction(id, A_FAIL, seed, fuzzy);
    }

    /// The arbiter splits the price (0%, 100% or anything between), or anyone unwinds the
    /// dispute after the arbiter's deadline.
    function settleDispute(uint256 jobSeed, uint256 seed) public {
        (uint256 id, bool fuzzy) = _pick(jobSeed, S_DISPUTED);
        if (id != 0) _settleAction(id, seed % 3 == 0 ? A_TIMEOUT : A_RESOLVE, seed, fuzzy);
    }

    /// Takes a random live job one natural step further: bid, accept, submit, then complete,
    /// dispute or finalize, then resolve; or the matching timeout once its window has passed.
    /// It makes deep lifecycles common within a 32-call run.
    function advance(uint256 jobSeed, uint256 seed) public {
        uint256 n = jobCount;
        if (n == 0) return;
        uint256 id;
        for (uint256 k = 0; k < n; k++) {
            uint256 cand = (jobSeed % n + k) % n + 1;
            if (!isTerminal(_jobs[cand].state)) {
                id = cand;
                break;
            }
        }
        if (id == 0) return;
        MJob storage j = _jobs[id];
        uint8 s = j.state;
        if (s == S_OPEN) {
            bool canAccept = block.timestamp <= j.acceptDeadline;
            if (canAccept && _activeProvider(seed, id) != address(0) && (seed >> 4) % 3 != 0) {
                _acceptBid(id, seed);
            } else if (block.timestamp <= j.bidDeadline && _activeProvider(seed, 0) != address(0)) {
                _placeBid(id, seed, seed >> 8);
            } else if (!canAccept) {
                _settleAction(id, A_EXPIRE, 0, false);
            }
        } else if (s == S_ASSIGNED) {
            if (block.timestamp <= j.executionDeadline) _submitResult(id);
            else _settleAction(id, A_FAIL, 0, false);
        } else if (s == S_SUBMITTED) {
            uint256 r = (seed >> 4) % 3;
            if (r == 0 && block.timestamp <= j.challengeEnd) _dispute(id);
            else _settleAction(id, r == 1 ? A_COMPLETE_CLIENT : A_FINALIZE, 0, false);
        } else {
            _settleAction(id, (seed >> 4) % 4 == 0 ? A_TIMEOUT : A_RESOLVE, seed, false);
        }
    }

    // ================================================================== money out, time, admin

    /// Withdraws for the first account (from a random start) that is owed something.
    function withdraw(uint256 accountSeed) public {
        uint256 n = _accounts.length * 2;
        for (uint256 k = 0; k < n; k++) {
            uint256 c = (accountSeed % n + k) % n;
            address a = _accounts[c / 2];
            address asset = _assets[c % 2];
            uint256 amount = ghostOwed[a][asset];
            if (amount == 0) continue;
            uint256 before = _balanceOf(a, asset);
            if (!_call(a, 0, abi.encodeCall(cr.withdraw, (asset)))) return;
            // (owed[a] itself is covered by the totalOwed == model check)
            if (_balanceOf(a, asset) - before != amount) _t.owedMismatches++;
            ghostOwed[a][asset] = 0;
            uint256 i = asset == NATIVE ? 0 : 1;
            _t.owedSum[i] -= amount;
            _t.withdrawn[i] += amount;
            nWithdrawals++;
            return;
        }
    }

    function warp(uint256 secondsSeed) public {
        _warpTo(block.timestamp + bound(secondsSeed, 1 minutes, 12 hours));
    }

    /// Pause (rarely), unpause (mostly), move the treasury, or change the accept window (which
    /// must not move the acceptance deadline of a job already posted). Pausing never blocks a
    /// settlement, an unbonding or a withdrawal; the pausable entry points are skipped while paused.
    function adminAction(uint256 seed) public {
        uint256 op = seed % 8;
        if (op == 0) {
            if (!paused && _call(admin, 0, abi.encodeCall(cr.pause, ()))) paused = true;
        } else if (op <= 4) {
            if (paused && _call(admin, 0, abi.encodeCall(cr.unpause, ()))) paused = false;
        } else if (op <= 6) {
            address next = treasury == _treasuries[0] ? _treasuries[1] : _treasuries[0];
            if (_call(admin, 0, abi.encodeCall(cr.setTreasury, (next)))) treasury = next;
        } else {
            uint64 w = uint64(bound(seed >> 3, 0, 2 days));
            ComputeRental.Params memory p = ComputeRental.Params({
                minStake: _minStake,
                unbondingDelay: _unbondingDelay,
                slashBps: uint16(_slashBps),
                challengeWindow: _challengeWindow,
                arbiterTimeout: _arbiterTimeout,
                acceptWindow: w,
                minExecutionTimeout: _minExec,
                maxExecutionTimeout: _maxExec,
                maxBidWindow: _maxBidWindow
            });
            if (_call(admin, 0, abi.encodeCall(ComputeRental.setParams, (p)))) acceptWindow = w;
        }
    }

    /// Called once from setUp (not a fuzz target): five jobs in ETH and the token, left open
    /// without and with bids, assigned, submitted and disputed, so every run starts with each
    /// kind of live job.
    function seedJobs() external {
        for (uint256 i = 0; i < 5; i++) {
            postJob(i % 3 + ((i % 2) << 8), ((i + 1) * 3 ether << 2) + 1, 1 days, 6 hours);
        }
        for (uint256 id = 2; id <= 5; id++) _placeBid(id, id, (_jobs[id].amount / 2) << 2 | 1);
        for (uint256 id = 3; id <= 5; id++) _acceptBid(id, id);
        _submitResult(4);
        _submitResult(5);
        _dispute(5);
    }

    // ================================================================== single transitions

    function _placeBid(uint256 id, uint256 providerSeed, uint256 priceSeed) internal {
        if (paused) return;
        address p = _activeProvider(providerSeed, 0);
        if (p == address(0)) return;
        uint256 maxPrice = _jobs[id].amount;
        uint256 price = priceSeed % 4 == 0 ? maxPrice : bound(priceSeed >> 2, 1, maxPrice);
        if (!_call(p, 0, abi.encodeCall(ComputeRental.placeBid, (id, price)))) return;
        _bids[id][p] = price;
        nBids++;
    }

    function _acceptBid(uint256 id, uint256 providerSeed) internal {
        if (paused) return;
        address p = _activeProvider(providerSeed, id);
        MJob storage j = _jobs[id];
        uint256 price = _bids[id][p];
        if (!_call(j.client, 0, abi.encodeCall(ComputeRental.acceptBid, (id, p, price)))) return;
        uint256 refund = j.amount - price;
        j.credited += uint128(_checkOwed(j.client, j.asset, ghostOwed[j.client][j.asset] + refund));
        _creditModel(j.client, j.asset, refund);
        uint256 i = j.asset == NATIVE ? 0 : 1;
        _t.escrowed[i] = _sub(_t.escrowed[i], refund);
        j.state = S_ASSIGNED;
        j.provider = p;
        j.amount = uint128(price);
        j.price = uint128(price);
        j.executionDeadline = uint64(block.timestamp) + j.executionTimeout;
        _prov[p].activeJobs += 1;
        nAssigned++;
    }

    function _submitResult(uint256 id) internal {
        MJob storage j = _jobs[id];
        bytes memory data = abi.encodeCall(ComputeRental.submitResult, (id, keccak256(abi.encode(id)), "ipfs://r"));
        if (!_call(j.provider, 0, data)) return;
        j.state = S_SUBMITTED;
        j.challengeEnd = uint64(block.timestamp) + _challengeWindow;
        nSubmitted++;
    }

    function _dispute(uint256 id) internal {
        MJob storage j = _jobs[id];
        if (!_call(j.client, 0, abi.encodeCall(ComputeRental.dispute, (id, "ipfs://reason")))) return;
        j.state = S_DISPUTED;
        j.disputeDeadline = uint64(block.timestamp) + _arbiterTimeout;
        nDisputed++;
    }

    /// Runs a settling action on `id`. Timeouts wait out their deadline half the time (not in
    /// fuzzy mode); the model predicts whether the call must succeed.
    function _settleAction(uint256 id, uint8 action, uint256 seed, bool fuzzy) internal {
        MJob storage j = _jobs[id];
        bool wait = !fuzzy && (seed >> 1) % 2 == 0;
        address anyone = _accounts[(seed >> 2) % 6];
        if (action == A_COMPLETE_CLIENT) {
            _settle(id, j.client, abi.encodeCall(ComputeRental.acceptResult, (id)), action, 0);
        } else if (action == A_FINALIZE) {
            if (wait) _warpTo(uint256(j.challengeEnd) + 1);
            _settle(id, anyone, abi.encodeCall(ComputeRental.finalize, (id)), action, 0);
        } else if (action == A_CANCEL) {
            _settle(id, j.client, abi.encodeCall(ComputeRental.cancelJob, (id)), action, 0);
        } else if (action == A_EXPIRE) {
            if (wait) _warpTo(uint256(j.acceptDeadline) + 1);
            _settle(id, anyone, abi.encodeCall(ComputeRental.expireJob, (id)), action, 0);
        } else if (action == A_FAIL) {
            if (wait) _warpTo(uint256(j.executionDeadline) + 1);
            _settle(id, anyone, abi.encodeCall(ComputeRental.failJob, (id)), action, 0);
        } else if (action == A_RESOLVE) {
            uint256 r = (seed >> 3) % 8;
            uint16 bps = r == 0 ? 0 : r == 1 ? uint16(BPS) : uint16(bound(seed >> 6, 0, BPS));
            _settle(id, arbiter, abi.encodeCall(ComputeRental.resolveDispute, (id, bps)), action, bps);
        } else {
            if (wait) _warpTo(uint256(j.disputeDeadline) + 1);
            _settle(id, anyone, abi.encodeCall(ComputeRental.resolveDisputeTimeout, (id)), action, 0);
        }
    }

    // ================================================================== settlement

    struct Delta {
        uint256 client; // in the job's asset, slash excluded
        uint256 provider;
        uint256 treasury;
        uint256 slash;
    }

    /// Whether the model says `action` on `id` must succeed now (caller chosen by the action).
    function _canSettle(MJob storage j, uint8 action) internal view returns (bool) {
        uint8 s = j.state;
        if (action == A_COMPLETE_CLIENT) return s == S_SUBMITTED;
        if (action == A_FINALIZE) return s == S_SUBMITTED && block.timestamp > j.challengeEnd;
        if (action == A_RESOLVE) return s == S_DISPUTED;
        if (action == A_FAIL) return s == S_ASSIGNED && block.timestamp > j.executionDeadline;
        if (action == A_CANCEL) return s == S_OPEN;
        if (action == A_EXPIRE) return s == S_OPEN && block.timestamp > j.acceptDeadline;
        return s == S_DISPUTED && block.timestamp > j.disputeDeadline; // A_TIMEOUT
    }

    /// Calls a settling entry point, checks the outcome against the model's prediction, then
    /// measures what it credited against the model and against the contract's own event.
    function _settle(uint256 id, address caller, bytes memory data, uint8 action, uint16 bps) internal {
        MJob storage j = _jobs[id];
        bool expectOk = _canSettle(j, action);
        vm.recordLogs();
        if (!_callExpect(caller, 0, data, expectOk)) return;
        _consumeLogs();

        Delta memory d = _measure(j, action);
        j.settleCalls++;
        j.kind = action;
        j.credited += uint128(d.client + d.provider + d.treasury);
        nSettled[action]++;
        _check(j, action, bps, d);
        _applyModel(j, action, bps);

        // At most once: the same call again must now revert.
        if (_callExpect(caller, 0, data, false)) j.settleCalls++;
    }

    /// Owed increases since the model's last (verified) values.
    function _measure(MJob storage j, uint8 action) internal returns (Delta memory d) {
        address asset = j.asset;
        d.client = _sub(cr.owed(j.client, asset), ghostOwed[j.client][asset]);
        d.treasury = _sub(cr.owed(treasury, asset), ghostOwed[treasury][asset]);
        if (j.provider != address(0)) d.provider = _sub(cr.owed(j.provider, asset), ghostOwed[j.provider][asset]);
        if (action == A_FAIL) {
            d.slash = _sub(_prov[j.provider].stake, cr.getProvider(j.provider).stake);
            if (asset == NATIVE) {
                d.client = _sub(d.client, d.slash);
            } else if (_sub(cr.owed(j.client, NATIVE), ghostOwed[j.client][NATIVE]) != d.slash) {
                _t.payoutMismatches++;
            }
        }
    }

    function _check(MJob storage j, uint8 action, uint16 bps, Delta memory d) internal {
        uint256 amount = j.amount;
        bool bad;
        if (action == A_COMPLETE_CLIENT || action == A_FINALIZE) {
            _t.sumCompletedPrice += amount;
            _t.sumCompletedPayoutPlusFee += d.provider + d.treasury;
            bad = d.provider + d.treasury != amount || d.treasury != _fee(amount) || d.client != 0;
            bad = bad || !_evSeen || _evPayout != d.provider || _evFee != d.treasury;
        } else if (action == A_RESOLVE) {
            uint256 share = amount * bps / BPS;
            _t.sumResolvedPrice += amount;
            _t.sumResolvedSplit += d.provider + d.treasury + d.client;
            bad = d.provider + d.treasury + d.client != amount || d.treasury != _fee(share)
                || d.client != amount - share;
            bad = bad || !_evSeen || _evPayout != d.provider || _evFee != d.treasury || _evRefund != d.client;
        } else {
            uint256 wantSlash = action == A_FAIL ? _prov[j.provider].stake * _slashBps / BPS : 0;
            bad = d.client != amount || d.provider != 0 || d.treasury != 0 || d.slash != wantSlash;
        }
        if (bad) _t.payoutMismatches++;
    }

    /// The independent model of a settlement.
    function _applyModel(MJob storage j, uint8 action, uint16 bps) internal {
        address asset = j.asset;
        uint256 amount = j.amount;
        _t.escrowed[asset == NATIVE ? 0 : 1] = _sub(_t.escrowed[asset == NATIVE ? 0 : 1], amount);
        if (action == A_COMPLETE_CLIENT || action == A_FINALIZE) {
            uint256 fee = _fee(amount);
            _creditModel(treasury, asset, fee);
            _creditModel(j.provider, asset, amount - fee);
            j.state = S_COMPLETED;
        } else if (action == A_RESOLVE) {
            uint256 share = amount * bps / BPS;
            uint256 fee = _fee(share);
            _creditModel(treasury, asset, fee);
            _creditModel(j.provider, asset, share - fee);
            _creditModel(j.client, asset, amount - share);
            j.state = S_RESOLVED;
        } else {
            _creditModel(j.client, asset, amount);
            if (action == A_FAIL) {
                MProvider storage p = _prov[j.provider];
                uint256 slash = p.stake * _slashBps / BPS;
                p.stake -= slash;
                _t.escrowed[0] = _sub(_t.escrowed[0], slash);
                _creditModel(j.client, NATIVE, slash);
                j.state = S_FAILED;
            } else {
                j.state = action == A_CANCEL ? S_CANCELLED : action == A_EXPIRE ? S_EXPIRED : S_RESOLVED;
            }
        }
        if (action != A_CANCEL && action != A_EXPIRE) _prov[j.provider].activeJobs -= 1;
    }

    function _consumeLogs() internal {
        _evSeen = false;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; i++) {
            Vm.Log memory l = logs[i];
            if (l.emitter != address(cr) || l.topics.length < 2) continue;
            bytes32 t = l.topics[0];
            if (
                t == ComputeRental.JobCompleted.selector || t == ComputeRental.JobCancelled.selector
                    || t == ComputeRental.JobExpired.selector || t == ComputeRental.JobFailed.selector
                    || t == ComputeRental.DisputeResolved.selector || t == ComputeRental.DisputeTimedOut.selector
            ) {
                _jobs[uint256(l.topics[1])].settleEvents++;
                if (t == ComputeRental.JobCompleted.selector) {
                    (_evPayout, _evFee,) = abi.decode(l.data, (uint256, uint256, bool));
                    _evRefund = 0;
                    _evSeen = true;
                } else if (t == ComputeRental.DisputeResolved.selector) {
                    (, _evPayout, _evFee, _evRefund) = abi.decode(l.data, (uint16, uint256, uint256, uint256));
                    _evSeen = true;
                }
            }
        }
    }

    // ================================================================== calls

    /// Calls `cr` as `caller`; a revert where the model expects success is a divergence.
    function _call(address caller, uint256 value, bytes memory data) internal returns (bool) {
        return _callExpect(caller, value, data, true);
    }

    function _callExpect(address caller, uint256 value, bytes memory data, bool expectOk) internal returns (bool ok) {
        (ok,) = _callRet(caller, value, data, expectOk);
    }

    function _callRet(address caller, uint256 value, bytes memory data, bool expectOk)
        internal
        returns (bool ok, bytes memory ret)
    {
        vm.prank(caller);
        (ok, ret) = address(cr).call{value: value}(data);
        if (ok != expectOk) _t.divergences++;
        else if (!ok) nExpectedReverts++;
    }

    // ================================================================== picking

    /// An existing job for `filter`: from a random start, the first one the model says is
    /// eligible. One call in eight returns the random id as is, flagged `fuzzy`.
    function _pick(uint256 seed, uint8 filter) internal view returns (uint256 id, bool fuzzy) {
        uint256 n = jobCount;
        if (n == 0) return (0, false);
        uint256 start = seed % n;
        if (uint256(keccak256(abi.encode(seed))) % 8 == 0) return (start + 1, true);
        for (uint256 k = 0; k < n; k++) {
            uint256 cand = (start + k) % n + 1;
            if (_eligible(cand, filter)) return (cand, false);
        }
        return (0, false);
    }

    function _eligible(uint256 id, uint8 filter) internal view returns (bool) {
        MJob storage j = _jobs[id];
        uint8 s = j.state;
        if (filter == F_BID) return s == S_OPEN && block.timestamp <= j.bidDeadline;
        if (filter == F_ACCEPT_BID) {
            return s == S_OPEN && block.timestamp <= j.acceptDeadline
                && _activeProvider(0, id) != address(0);
        }
        if (filter == F_SUBMIT) return s == S_ASSIGNED && block.timestamp <= j.executionDeadline;
        if (filter == F_DISPUTE) return s == S_SUBMITTED && block.timestamp <= j.challengeEnd;
        return s == filter;
    }

    /// The first provider (from a random start) that may bid and be accepted now, with a
    /// standing bid on `id` unless `id` is 0.
    function _activeProvider(uint256 seed, uint256 id) internal view returns (address) {
        for (uint256 k = 0; k < 3; k++) {
            address p = _providers[(seed % 3 + k) % 3];
            MProvider storage m = _prov[p];
            if (m.registered && m.unbondingAt == 0 && m.stake >= _minStake && (id == 0 || _bids[id][p] != 0)) {
                return p;
            }
        }
        return address(0);
    }

    // ================================================================== helpers

    function _deposit(address asset, uint256 amount) internal {
        uint256 i = asset == NATIVE ? 0 : 1;
        _t.escrowed[i] += amount;
        _t.deposited[i] += amount;
    }

    function _creditModel(address account, address asset, uint256 amount) internal {
        uint256 i = asset == NATIVE ? 0 : 1;
        ghostOwed[account][asset] += amount;
        _t.owedSum[i] += amount;
    }

    /// Reads `account`'s owed balance, counts a mismatch with `expected`, returns the increase
    /// over the model's current value.
    function _checkOwed(address account, address asset, uint256 expected) internal returns (uint256 increase) {
        uint256 actual = cr.owed(account, asset);
        if (actual != expected) _t.owedMismatches++;
        increase = _sub(actual, ghostOwed[account][asset]);
    }

    function _warpTo(uint256 t) internal {
        if (t > block.timestamp) vm.warp(t);
    }

    /// Mostly ordinary amounts; one in four is tiny, to exercise the fee's rounding.
    function _amount(uint256 seed) internal pure returns (uint256) {
        return seed % 4 == 0 ? bound(seed >> 2, 1, 1_000) : bound(seed >> 2, 1_001, 50 ether);
    }

    /// 3% rounded up, computed independently of PaymentVault.feeOf.
    function _fee(uint256 amount) internal pure returns (uint256) {
        return (amount * 300 + BPS - 1) / BPS;
    }

    function _sub(uint256 a, uint256 b) internal returns (uint256) {
        if (b > a) {
            _t.modelUnderflows++;
            return 0;
        }
        return a - b;
    }

    function _balanceOf(address a, address asset) internal view returns (uint256) {
        return asset == NATIVE ? a.balance : token.balanceOf(a);
    }

    function _str(uint256 i) internal pure returns (string memory) {
        return string(abi.encodePacked(bytes1(uint8(48 + i))));
    }

    // ================================================================== views for the invariants

    function totals() external view returns (Totals memory) {
        return _t;
    }

    function job(uint256 id) external view returns (MJob memory) {
        return _jobs[id];
    }

    function isTerminal(uint8 s) public pure returns (bool) {
        return s == S_COMPLETED || s == S_CANCELLED || s == S_EXPIRED || s == S_FAILED || s == S_RESOLVED;
    }

    /// What invariant_Solvent needs (each invariant runs after every call: read little).
    function solvencyTotals()
        external
        view
        returns (
            uint256[2] memory escrowed,
            uint256[2] memory owedSum,
            uint256[2] memory deposited,
            uint256[2] memory withdrawn,
            uint256 owedMismatches,
            uint256 modelUnderflows
        )
    {
        return (_t.escrowed, _t.owedSum, _t.deposited, _t.withdrawn, _t.owedMismatches, _t.modelUnderflows);
    }

    /// Per job: at most one settling call and one settlement event, never more credited than
    /// escrowed; a terminal job settled exactly once and released exactly its escrow. Returns
    /// the first failing job id and a reason.
    function checkJobs() external view returns (uint256 badJob, string memory reason) {
        for (uint256 id = 1; id <= jobCount; id++) {
            MJob storage j = _jobs[id];
            if (j.settleCalls > 1) return (id, "job settled twice");
            if (j.settleEvents > 1) return (id, "two settlement events for one job");
            if (j.credited > j.escrow) return (id, "job credited more than its escrow");
            if (isTerminal(j.state)) {
                if (j.settleCalls != 1 || j.settleEvents != 1) return (id, "terminal job not settled exactly once");
                if (j.credited != j.escrow) return (id, "settled job did not release exactly its escrow");
            } else if (j.settleCalls != 0 || j.settleEvents != 0) {
                return (id, "live job has a settlement");
            }
        }
        return (0, "");
    }

    /// The divergence count, and the jobs the model has in a terminal state with that state.
    function terminalJobs() external view returns (uint256 divergences, uint256[] memory ids, uint8[] memory st) {
        uint256 n;
        for (uint256 id = 1; id <= jobCount; id++) {
            if (isTerminal(_jobs[id].state)) n++;
        }
        ids = new uint256[](n);
        st = new uint8[](n);
        n = 0;
        for (uint256 id = 1; id <= jobCount; id++) {
            uint8 s = _jobs[id].state;
            if (isTerminal(s)) (ids[n], st[n++]) = (id, s);
        }
        divergences = _t.divergences;
    }

    /// What invariant_PayoutPlusFeeEqualsPrice needs. Each settlement's split was checked when
    /// it happened (payoutMismatches); the sums re-check it in aggregate.
    function priceTotals()
        external
        view
        returns (
            uint256 payoutMismatches,
            uint256 completedPrice,
            uint256 completedPayoutPlusFee,
            uint256 resolvedPrice,
            uint256 resolvedSplit
        )
    {
        return (
            _t.payoutMismatches,
            _t.sumCompletedPrice,
            _t.sumCompletedPayoutPlusFee,
            _t.sumResolvedPrice,
            _t.sumResolvedSplit
        );
    }
}
