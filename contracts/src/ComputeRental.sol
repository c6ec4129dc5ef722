// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PaymentVault} from "./PaymentVault.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title ComputeRental
/// @notice Escrowed GPU compute jobs. Clients post jobs with the payment escrowed, staked
/// providers bid, the client accepts a bid, the provider posts the result hash, and the escrow
/// is released minus the 3% fee. Timeouts, cancellation, refunds and disputes cover every other
/// outcome, and anyone may trigger a transition that a timeout allows, so no state locks funds.
/// @dev The state machine is documented in docs/CONTRACTS.md.
contract ComputeRental is PaymentVault {
    enum JobState {
        None,
        Open,
        Assigned,
        Submitted,
        Completed,
        Cancelled,
        Expired,
        Failed,
        Disputed,
        Resolved
    }

    struct Job {
        address client;
        address asset;
        address provider;
        JobState state;
        uint64 bidDeadline;
        /// Fixed at posting: bidDeadline plus the accept window then in force.
        uint64 acceptDeadline;
        uint32 executionTimeout;
        uint64 executionDeadline;
        uint64 challengeEnd;
        uint64 disputeDeadline;
        /// Escrowed amount: the client's maximum until a bid is accepted, the price after.
        uint256 amount;
        bytes32 specHash;
        bytes32 resultHash;
    }

    struct Provider {
        uint256 stake;
        uint64 unbondingAt;
        uint32 activeJobs;
        bool registered;
        string metadataCid;
    }

    /// @notice Tunable protocol parameters. Every job snapshots the window it is in when the
    /// window opens, so a change never moves a deadline that is already running.
    struct Params {
        uint256 minStake;
        uint64 unbondingDelay;
        uint16 slashBps;
        uint64 challengeWindow;
        uint64 arbiterTimeout;
        uint64 acceptWindow;
        uint32 minExecutionTimeout;
        uint32 maxExecutionTimeout;
        uint64 maxBidWindow;
    }

    uint64 internal constant _MAX_WINDOW = 365 days;

    Params private _params;
    uint256 public jobCount;
    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => mapping(address provider => uint256 price)) public bidOf;
    mapping(address provider => Provider) private _providers;

    event ParamsUpdated(Params params);
    event ProviderRegistered(address indexed provider, uint256 stake, string metadataCid);
    event StakeAdded(address indexed provider, uint256 amount, uint256 stake);
    event ProviderMetadataUpdated(address indexed provider, string metadataCid);
    event UnbondingRequested(address indexed provider, uint64 availableAt);
    event ProviderUnbonded(address indexed provider, uint256 stake);
    event ProviderSlashed(address indexed provider, uint256 indexed jobId, uint256 amount, address beneficiary);

    event JobPosted(
        uint256 indexed jobId,
        address indexed client,
        address indexed asset,
        uint256 amount,
        bytes32 specHash,
        string specCid,
        uint64 bidDeadline,
        uint32 executionTimeout
    );
    event BidPlaced(uint256 indexed jobId, address indexed provider, uint256 price);
    event JobAssigned(
        uint256 indexed jobId, address indexed provider, uint256 price, uint256 refund, uint64 executionDeadline
    );
    event ResultSubmitted(
        uint256 indexed jobId, address indexed provider, bytes32 resultHash, string resultCid, uint64 challengeEnd
    );
    event JobCompleted(uint256 indexed jobId, address indexed provider, uint256 payout, uint256 fee, bool byClient);
    event JobCancelled(uint256 indexed jobId, uint256 refund);
    event JobExpired(uint256 indexed jobId, uint256 refund);
    event JobFailed(uint256 indexed jobId, address indexed provider, uint256 refund, uint256 slashed);
    event JobDisputed(uint256 indexed jobId, address indexed client, string reasonCid, uint64 disputeDeadline);
    event DisputeResolved(
        uint256 indexed jobId,
        address indexed arbiter,
        uint16 providerBps,
        uint256 providerPayout,
        uint256 fee,
        uint256 clientRefund
    );
    event DisputeTimedOut(uint256 indexed jobId, uint256 refund);

    error InvalidParams(string reason);
    error AlreadyRegistered(address provider);
    error NotRegistered(address provider);
    error StakeTooLow(uint256 stake, uint256 minStake);
    error ProviderUnbonding(address provider);
    error NotUnbonding(address provider);
    error UnbondingNotReady(uint64 availableAt, uint64 nowTs);
    error ProviderHasActiveJobs(address provider, uint32 activeJobs);
    error JobNotFound(uint256 jobId);
    error WrongJobState(uint256 jobId, JobState state);
    error NotClient(uint256 jobId, address caller);
    error NotAssignedProvider(uint256 jobId, address caller);
    error InvalidDeadline(uint64 deadline);
    error InvalidExecutionTimeout(uint32 timeout, uint32 min, uint32 max);
    error EmptySpecHash();
    error EmptyResultHash();
    error BidWindowClosed(uint256 jobId, uint64 bidDeadline);
    error AcceptWindowClosed(uint256 jobId, uint64 acceptDeadline);
    error InvalidPrice(uint256 price, uint256 maxPrice);
    error NoSuchBid(uint256 jobId, address provider);
    error BidMismatch(uint256 jobId, address provider, uint256 bid, uint256 expected);
    error ExecutionDeadlinePassed(uint256 jobId, uint64 deadline);
    error DeadlineNotReached(uint256 jobId, uint64 deadline);
    error ChallengeWindowClosed(uint256 jobId, uint64 challengeEnd);
    error ChallengeWindowOpen(uint256 jobId, uint64 challengeEnd);
    error InvalidShare(uint16 providerBps);

    constructor(address admin, address treasury_, Params memory params_) PaymentVault(admin, treasury_) {
        _setParams(params_);
    }

    // ================================================================ admin

    function setParams(Params calldata params_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParams(params_);
    }

    function params() external view returns (Params memory) {
        return _params;
    }

    // ================================================================ providers

    /// @notice Join the provider registry with a stake in native ETH and a metadata CID naming
    /// the provider's capabilities (GPU model, VRAM, price policy, endpoint).
    function registerProvider(string calldata metadataCid) external payable whenNotPaused nonReentrant {
        Provider storage p = _providers[msg.sender];
        if (p.registered) revert AlreadyRegistered(msg.sender);
        if (msg.value < _params.minStake || msg.value == 0) revert StakeTooLow(msg.value, _params.minStake);
        p.registered = true;
        p.stake = msg.value;
        p.metadataCid = metadataCid;
        totalEscrowed[NATIVE] += msg.value;
        emit ProviderRegistered(msg.sender, msg.value, metadataCid);
    }

    function addStake() external payable whenNotPaused nonReentrant {
        Provider storage p = _requireProvider(msg.sender);
        if (msg.value == 0) revert ZeroAmount();
        p.stake += msg.value;
        totalEscrowed[NATIVE] += msg.value;
        emit StakeAdded(msg.sender, msg.value, p.stake);
    }

    function updateProviderMetadata(string calldata metadataCid) external {
        Provider storage p = _requireProvider(msg.sender);
        p.metadataCid = metadataCid;
        emit ProviderMetadataUpdated(msg.sender, metadataCid);
    }

    /// @notice Start leaving the registry. The provider can no longer bid or be accepted; the
    /// stake stays slashable until the unbonding delay has passed and no job is active.
    function requestUnbond() external {
        Provider storage p = _requireProvider(msg.sender);
        if (p.unbondingAt != 0) revert ProviderUnbonding(msg.sender);
        uint64 availableAt = uint64(block.timestamp) + _params.unbondingDelay;
        p.unbondingAt = availableAt;
        emit UnbondingRequested(msg.sender, availableAt);
    }

    /// @notice Finish leaving the registry: the remaining stake becomes withdrawable.
    function completeUnbond() external nonReentrant {
        Provider storage p = _requireProvider(msg.sender);
        if (p.unbondingAt == 0) revert NotUnbonding(msg.sender);
        if (block.timestamp < p.unbondingAt) revert UnbondingNotReady(p.unbondingAt, uint64(block.timestamp));
        if (p.activeJobs != 0) revert ProviderHasActiveJobs(msg.sender, p.activeJobs);
        uint256 stake = p.stake;
        delete _providers[msg.sender];
        _credit(msg.sender, NATIVE, stake);
        emit ProviderUnbonded(msg.sender, stake);
    }

    function getProvider(address provider) external view returns (Provider memory) {
        return _providers[provider];
    }

    /// @notice Whether `provider` may bid and be accepted now.
    function isActiveProvider(address provider) public view returns (bool) {
        Provider storage p = _providers[provider];
        return p.registered && p.unbondingAt == 0 && p.stake >= _params.minStake;
    }

    // ================================================================ jobs

    /// @notice Post a job, escrowing `amount` of `asset` as the most the client will pay.
    /// @param specHash sha256 of the job spec document stored at `specCid`.
    /// @param bidDeadline last timestamp at which bids are taken.
    /// @param executionTimeout seconds the assigned provider has to post the result.
    function postJob(
        address asset,
        uint256 amount,
        bytes32 specHash,
        string calldata specCid,
        uint64 bidDeadline,
        uint32 executionTimeout
    ) external payable whenNotPaused nonReentrant returns (uint256 jobId) {
        if (specHash == bytes32(0)) revert EmptySpecHash();
        if (bidDeadline <= block.timestamp || bidDeadline > block.timestamp + _params.maxBidWindow) {
            revert InvalidDeadline(bidDeadline);
        }
        if (executionTimeout < _params.minExecutionTimeout || executionTimeout > _params.maxExecutionTimeout) {
            revert InvalidExecutionTimeout(executionTimeout, _params.minExecutionTimeout, _params.maxExecutionTimeout);
        }
        _collect(asset, amount);
        jobId = ++jobCount;
        Job storage j = _jobs[jobId];
        j.client = msg.sender;
        j.asset = asset;
        j.state = JobState.Open;
        j.bidDeadline = bidDeadline;
        j.acceptDeadline = bidDeadline + _params.acceptWindow;
        j.executionTimeout = executionTimeout;
        j.amount = amount;
        j.specHash = specHash;
        emit JobPosted(jobId, msg.sender, asset, amount, specHash, specCid, bidDeadline, executionTimeout);
    }

    /// @notice Bid `price` (at most the escrowed amount) on an open job. A later bid by the same
    /// provider replaces the earlier one.
    function placeBid(uint256 jobId, uint256 price) external whenNotPaused {
        Job storage j = _requireState(jobId, JobState.Open);
        if (block.timestamp > j.bidDeadline) revert BidWindowClosed(jobId, j.bidDeadline);
        _requireActiveProvider(msg.sender);
        if (price == 0 || price > j.amount) revert InvalidPrice(price, j.amount);
        bidOf[jobId][msg.sender] = price;
        emit BidPlaced(jobId, msg.sender, price);
    }

    /// @notice Accept `provider`'s bid. `expectedPrice` guards against a bid changed after the
    /// client read it. The escrow above the price goes back to the client.
    function acceptBid(uint256 jobId, address provider, uint256 expectedPrice) external whenNotPaused nonReentrant {
        Job storage j = _requireState(jobId, JobState.Open);
        if (msg.sender != j.client) revert NotClient(jobId, msg.sender);
        uint64 acceptDeadline = j.acceptDeadline;
        if (block.timestamp > acceptDeadline) revert AcceptWindowClosed(jobId, acceptDeadline);
        uint256 price = bidOf[jobId][provider];
        if (price == 0) revert NoSuchBid(jobId, provider);
        if (price != expectedPrice) revert BidMismatch(jobId, provider, price, expectedPrice);
        _requireActiveProvider(provider);

        uint256 refund = j.amount - price;
        uint64 executionDeadline = uint64(block.timestamp) + j.executionTimeout;
        j.state = JobState.Assigned;
        j.provider = provider;
        j.amount = price;
        j.executionDeadline = executionDeadline;
        _providers[provider].activeJobs += 1;
        _credit(j.client, j.asset, refund);
        emit JobAssigned(jobId, provider, price, refund, executionDeadline);
    }

    /// @notice The assigned provider posts the result before the execution deadline. This
    /// opens the challenge window.
    function submitResult(uint256 jobId, bytes32 resultHash, string calldata resultCid) external {
        Job storage j = _requireState(jobId, JobState.Assigned);
        if (msg.sender != j.provider) revert NotAssignedProvider(jobId, msg.sender);
        if (block.timestamp > j.executionDeadline) revert ExecutionDeadlinePassed(jobId, j.executionDeadline);
        if (resultHash == bytes32(0)) revert EmptyResultHash();
        uint64 challengeEnd = uint64(block.timestamp) + _params.challengeWindow;
        j.state = JobState.Submitted;
        j.resultHash = resultHash;
        j.challengeEnd = challengeEnd;
        emit ResultSubmitted(jobId, msg.sender, resultHash, resultCid, challengeEnd);
    }

    /// @notice The client accepts the result early; the provider is paid the price minus 3%.
    function acceptResult(uint256 jobId) external nonReentrant {
        Job storage j = _requireState(jobId, JobState.Submitted);
        if (msg.sender != j.client) revert NotClient(jobId, msg.sender);
        _complete(jobId, j, true);
    }

    /// @notice Anyone completes a submitted job once its challenge window has closed.
    function finalize(uint256 jobId) external nonReentrant {
        Job storage j = _requireState(jobId, JobState.Submitted);
        if (block.timestamp <= j.challengeEnd) revert ChallengeWindowOpen(jobId, j.challengeEnd);
        _complete(jobId, j, false);
    }

    /// @notice The client cancels an open job and gets the whole escrow back, with no fee.
    function cancelJob(uint256 jobId) external nonReentrant {
        Job storage j = _requireState(jobId, JobState.Open);
        if (msg.sender != j.client) revert NotClient(jobId, msg.sender);
        uint256 refund = j.amount;
        j.state = JobState.Cancelled;
        _credit(j.client, j.asset, refund);
        emit JobCancelled(jobId, refund);
    }

    /// @notice Anyone expires an open job whose acceptance window has closed without an
    /// accepted bid; the client gets the whole escrow back.
    function expireJob(uint256 jobId) external nonReentrant {
        Job storage j = _requireState(jobId, JobState.Open);
        uint64 acceptDeadline = j.acceptDeadline;
        if (block.timestamp <= acceptDeadline) revert DeadlineNotReached(jobId, acceptDeadline);
        uint256 refund = j.amount;
        j.state = JobState.Expired;
        _credit(j.client, j.asset, refund);
        emit JobExpired(jobId, refund);
    }

    /// @notice Anyone fails an assigned job whose execution deadline has passed without a
    /// result. The client is refunded and receives the slashed part of the provider's stake.
    function failJob(uint256 jobId) external nonReentrant {
        Job storage j = _requireState(jobId, JobState.Assigned);
        if (block.timestamp <= j.executionDeadline) revert DeadlineNotReached(jobId, j.executionDeadline);
        address provider = j.provider;
        Provider storage p = _providers[provider];
        uint256 refund = j.amount;
        // Rounds down: a slash never takes more than slashBps of the stake.
        uint256 slashed = Math.mulDiv(p.stake, _params.slashBps, _BPS);
        j.state = JobState.Failed;
        p.activeJobs -= 1;
        p.stake -= slashed;
        _credit(j.client, j.asset, refund);
        if (slashed != 0) {
            _credit(j.client, NATIVE, slashed);
            emit ProviderSlashed(provider, jobId, slashed, j.client);
        }
        emit JobFailed(jobId, provider, refund, slashed);
    }

    /// @notice The client disputes a submitted result within the challenge window.
    function dispute(uint256 jobId, string calldata reasonCid) external {
        Job storage j = _requireState(jobId, JobState.Submitted);
        if (msg.sender != j.client) revert NotClient(jobId, msg.sender);
        if (block.timestamp > j.challengeEnd) revert ChallengeWindowClosed(jobId, j.challengeEnd);
        uint64 disputeDeadline = uint64(block.timestamp) + _params.arbiterTimeout;
        j.state = JobState.Disputed;
        j.disputeDeadline = disputeDeadline;
        emit JobDisputed(jobId, msg.sender, reasonCid, disputeDeadline);
    }

    /// @notice The arbiter splits a disputed price: `providerBps` of it goes to the provider,
    /// minus 3% on that part; the rest returns to the client with no fee.
    function resolveDispute(uint256 jobId, uint16 providerBps) external onlyRole(ARBITER_ROLE) nonReentrant {
        Job storage j = _requireState(jobId, JobState.Disputed);
        if (providerBps > _BPS) revert InvalidShare(providerBps);
        uint256 providerShare = Math.mulDiv(j.amount, providerBps, _BPS);
        uint256 clientRefund = j.amount - providerShare;
        j.state = JobState.Resolved;
        _providers[j.provider].activeJobs -= 1;
        (uint256 payout, uint256 fee) = _chargeFee(j.asset, providerShare);
        _credit(j.provider, j.asset, payout);
        _credit(j.client, j.asset, clientRefund);
        emit DisputeResolved(jobId, msg.sender, providerBps, payout, fee, clientRefund);
    }

    /// @notice Anyone unwinds a dispute the arbiter has not resolved in time: the client is
    /// refunded and the provider is not slashed, since no fault was established.
    function resolveDisputeTimeout(uint256 jobId) external nonReentrant {
        Job storage j = _requireState(jobId, JobState.Disputed);
        if (block.timestamp <= j.disputeDeadline) revert DeadlineNotReached(jobId, j.disputeDeadline);
        uint256 refund = j.amount;
        j.state = JobState.Resolved;
        _providers[j.provider].activeJobs -= 1;
        _credit(j.client, j.asset, refund);
        emit DisputeTimedOut(jobId, refund);
    }

    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    // ================================================================ internals

    function _complete(uint256 jobId, Job storage j, bool byClient) private {
        j.state = JobState.Completed;
        _providers[j.provider].activeJobs -= 1;
        (uint256 payout, uint256 fee) = _chargeFee(j.asset, j.amount);
        _credit(j.provider, j.asset, payout);
        emit JobCompleted(jobId, j.provider, payout, fee, byClient);
    }

    function _requireState(uint256 jobId, JobState expected) private view returns (Job storage j) {
        j = _jobs[jobId];
        if (j.state == JobState.None) revert JobNotFound(jobId);
        if (j.state != expected) revert WrongJobState(jobId, j.state);
    }

    function _requireProvider(address provider) private view returns (Provider storage p) {
        p = _providers[provider];
        if (!p.registered) revert NotRegistered(provider);
    }

    function _requireActiveProvider(address provider) private view {
        Provider storage p = _requireProvider(provider);
        if (p.unbondingAt != 0) revert ProviderUnbonding(provider);
        if (p.stake < _params.minStake) revert StakeTooLow(p.stake, _params.minStake);
    }

    function _setParams(Params memory p) private {
        if (p.slashBps > _BPS) revert InvalidParams("slashBps above 10000");
        if (p.challengeWindow == 0 || p.challengeWindow > _MAX_WINDOW) revert InvalidParams("challengeWindow");
        if (p.arbiterTimeout == 0 || p.arbiterTimeout > _MAX_WINDOW) revert InvalidParams("arbiterTimeout");
        if (p.acceptWindow > _MAX_WINDOW) revert InvalidParams("acceptWindow");
        if (p.unbondingDelay > _MAX_WINDOW) revert InvalidParams("unbondingDelay");
        if (p.maxBidWindow == 0 || p.maxBidWindow > _MAX_WINDOW) revert InvalidParams("maxBidWindow");
        if (p.minExecutionTimeout == 0 || p.minExecutionTimeout > p.maxExecutionTimeout) {
            revert InvalidParams("execution timeout bounds");
        }
        if (p.maxExecutionTimeout > _MAX_WINDOW) revert InvalidParams("maxExecutionTimeout");
        _params = p;
        emit ParamsUpdated(p);
    }
}
