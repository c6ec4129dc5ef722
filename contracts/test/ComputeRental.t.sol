// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/TestBase.sol";
import {ComputeRental} from "../src/ComputeRental.sol";
import {PaymentVault} from "../src/PaymentVault.sol";
import {TestToken} from "../src/mocks/TestToken.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

// =====================================================================================
// Test doubles
// =====================================================================================

/// @dev Delivers 1% less than requested on every transfer (a fee-on-transfer token), which
/// PaymentVault must reject with UnsupportedToken.
contract FeeOnTransferToken is ERC20 {
    constructor() ERC20("Fee Token", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 burned = value / 100;
            super._update(from, address(0), burned);
            value -= burned;
        }
        super._update(from, to, value);
    }
}

/// @dev A client contract whose receive() re-enters withdraw(); records what the re-entry got.
contract ReentrantClient {
    ComputeRental internal immutable cr;
    bytes public reentryError;
    bool public reentered;

    constructor(ComputeRental cr_) {
        cr = cr_;
    }

    function postAndCancel(uint256 amount, bytes32 specHash, uint64 bidDeadline, uint32 executionTimeout)
        external
        payable
    {
        uint256 id = cr.postJob{value: amount}(address(0), amount, specHash, "cid", bidDeadline, executionTimeout);
        cr.cancelJob(id);
    }

    function withdraw() external {
        cr.withdraw(address(0));
    }

    receive() external payable {
        reentered = true;
        try cr.withdraw(address(0)) {}
        catch (bytes memory err) {
            reentryError = err;
        }
    }
}

/// @dev A client contract that cannot receive ETH.
contract EthRejectingClient {
    ComputeRental internal immutable cr;

    constructor(ComputeRental cr_) {
        cr = cr_;
    }

    function postAndCancel(uint256 amount, bytes32 specHash, uint64 bidDeadline, uint32 executionTimeout)
        external
        payable
    {
        uint256 id = cr.postJob{value: amount}(address(0), amount, specHash, "cid", bidDeadline, executionTimeout);
        cr.cancelJob(id);
    }

    function withdraw() external {
        cr.withdraw(address(0));
    }
}

// =====================================================================================
// Shared fixture: actors, default parameters and lifecycle helpers
// =====================================================================================

abstract contract ComputeRentalFixture is TestBase {
    ComputeRental internal cr;
    TestToken internal token;

    address internal admin;
    address internal treasury;
    address internal client;
    address internal provider;
    address internal provider2;
    address internal arbiter;
    address internal pauser;
    address internal stranger;

    address internal constant NATIVE = address(0);

    // Default protocol parameters.
    uint256 internal constant MIN_STAKE = 1 ether;
    uint64 internal constant UNBONDING_DELAY = 7 days;
    uint16 internal constant SLASH_BPS = 1_000; // 10%
    uint64 internal constant CHALLENGE_WINDOW = 1 days;
    uint64 internal constant ARBITER_TIMEOUT = 3 days;
    uint64 internal constant ACCEPT_WINDOW = 1 days;
    uint32 internal constant MIN_EXEC = 1 hours;
    uint32 internal constant MAX_EXEC = 7 days;
    uint64 internal constant MAX_BID_WINDOW = 7 days;
    uint64 internal constant MAX_WINDOW = 365 days;

    // Default job.
    uint256 internal constant START = 1_700_000_000;
    uint64 internal constant BID_WINDOW = 1 days;
    uint32 internal constant EXEC_TIMEOUT = 6 hours;
    uint256 internal constant MAX_AMOUNT = 2 ether;
    uint256 internal constant PRICE = 1.5 ether;
    bytes32 internal constant SPEC_HASH = keccak256("job spec");
    bytes32 internal constant RESULT_HASH = keccak256("job result");
    string internal constant SPEC_CID = "bafy-spec";
    string internal constant RESULT_CID = "bafy-result";
    string internal constant PROVIDER_CID = "bafy-provider";
    string internal constant REASON_CID = "bafy-reason";

    bytes32 internal ADMIN_ROLE;
    bytes32 internal ARBITER_ROLE;
    bytes32 internal PAUSER_ROLE;

    function setUp() public virtual {
        vm.warp(START);
        admin = makeAddr("admin");
        treasury = makeAddr("treasury");
        client = makeAddr("client");
        provider = makeAddr("provider");
        provider2 = makeAddr("provider2");
        arbiter = makeAddr("arbiter");
        pauser = makeAddr("pauser");
        stranger = makeAddr("stranger");

        cr = new ComputeRental(admin, treasury, _defaultParams());
        token = new TestToken();
        ADMIN_ROLE = cr.DEFAULT_ADMIN_ROLE();
        ARBITER_ROLE = cr.ARBITER_ROLE();
        PAUSER_ROLE = cr.PAUSER_ROLE();

        vm.startPrank(admin);
        cr.grantRole(ARBITER_ROLE, arbiter);
        cr.grantRole(PAUSER_ROLE, pauser);
        cr.setAssetAllowed(address(token), true);
        vm.stopPrank();

        _register(provider);
        _register(provider2);
    }

    // ------------------------------------------------------------------ params

    function _defaultParams() internal pure returns (ComputeRental.Params memory p) {
        p = ComputeRental.Params({
            minStake: MIN_STAKE,
            unbondingDelay: UNBONDING_DELAY,
            slashBps: SLASH_BPS,
            challengeWindow: CHALLENGE_WINDOW,
            arbiterTimeout: ARBITER_TIMEOUT,
            acceptWindow: ACCEPT_WINDOW,
            minExecutionTimeout: MIN_EXEC,
            maxExecutionTimeout: MAX_EXEC,
            maxBidWindow: MAX_BID_WINDOW
        });
    }

    function _setParams(ComputeRental.Params memory p) internal {
        vm.prank(admin);
        cr.setParams(p);
    }

    // ------------------------------------------------------------------ providers

    function _register(address who) internal {
        _registerWith(who, MIN_STAKE);
    }

    function _registerWith(address who, uint256 stake) internal {
        vm.deal(who, who.balance + stake);
        vm.prank(who);
        cr.registerProvider{value: stake}(PROVIDER_CID);
    }

    // ------------------------------------------------------------------ jobs

    function _bidDeadline() internal view returns (uint64) {
        return uint64(block.timestamp) + BID_WINDOW;
    }

    function _post(address asset, uint256 amount) internal returns (uint256 id) {
        if (asset == NATIVE) {
            vm.deal(client, client.balance + amount);
            vm.prank(client);
            id = cr.postJob{value: amount}(NATIVE, amount, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
        } else {
            TestToken(asset).mint(client, amount);
            vm.prank(client);
            TestToken(asset).approve(address(cr), amount);
            vm.prank(client);
            id = cr.postJob(asset, amount, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
        }
    }

    function _postEth() internal returns (uint256) {
        return _post(NATIVE, MAX_AMOUNT);
    }

    function _bid(uint256 id, address who, uint256 price) internal {
        vm.prank(who);
        cr.placeBid(id, price);
    }

    function _accept(uint256 id, address who, uint256 price) internal {
        vm.prank(client);
        cr.acceptBid(id, who, price);
    }

    /// @dev Posts a job of `amount` and assigns it to `provider` at `price`.
    function _assigned(address asset, uint256 amount, uint256 price) internal returns (uint256 id) {
        id = _post(asset, amount);
        _bid(id, provider, price);
        _accept(id, provider, price);
    }

    function _assignedEth() internal returns (uint256) {
        return _assigned(NATIVE, MAX_AMOUNT, PRICE);
    }

    function _submit(uint256 id) internal {
        vm.prank(provider);
        cr.submitResult(id, RESULT_HASH, RESULT_CID);
    }

    function _submitted(address asset, uint256 amount, uint256 price) internal returns (uint256 id) {
        id = _assigned(asset, amount, price);
        _submit(id);
    }

    function _submittedEth() internal returns (uint256) {
        return _submitted(NATIVE, MAX_AMOUNT, PRICE);
    }

    function _disputed(address asset, uint256 amount, uint256 price) internal returns (uint256 id) {
        id = _submitted(asset, amount, price);
        vm.prank(client);
        cr.dispute(id, REASON_CID);
    }

    function _disputedEth() internal returns (uint256) {
        return _disputed(NATIVE, MAX_AMOUNT, PRICE);
    }

    function _pause() internal {
        vm.prank(pauser);
        cr.pause();
    }

    // ------------------------------------------------------------------ assertions

    function _job(uint256 id) internal view returns (ComputeRental.Job memory) {
        return cr.getJob(id);
    }

    function _assertState(uint256 id, ComputeRental.JobState expected) internal view {
        vm.assertEq(uint256(cr.getJob(id).state), uint256(expected), "job state");
    }

    function _activeJobs(address who) internal view returns (uint256) {
        return cr.getProvider(who).activeJobs;
    }

    /// @dev The vault's solvency invariant for ETH and the test token.
    function _assertSolvent() internal view {
        vm.assertEq(
            address(cr).balance, cr.totalEscrowed(NATIVE) + cr.totalOwed(NATIVE), "ETH: balance != escrowed + owed"
        );
        vm.assertEq(
            token.balanceOf(address(cr)),
            cr.totalEscrowed(address(token)) + cr.totalOwed(address(token)),
            "token: balance != escrowed + owed"
        );
    }

    /// @dev ceil(x * 300 / 10000) computed independently of the contract and without overflow.
    function _expectedFee(uint256 x) internal pure returns (uint256) {
        return (x / 10_000) * 300 + ((x % 10_000) * 300 + 9_999) / 10_000;
    }

    /// @dev Fails if any recorded log has `topic0` as its event signature.
    function _assertNoEvent(Vm.Log[] memory logs, bytes32 topic0) internal pure {
        for (uint256 i = 0; i < logs.length; i++) {
            if (logs[i].topics.length > 0) vm.assertTrue(logs[i].topics[0] != topic0, "unexpected event emitted");
        }
    }

    function _expectEmit() internal {
        vm.expectEmit(true, true, true, true, address(cr));
    }

    function _expectRevert(bytes4 selector, uint256 a) internal {
        vm.expectRevert(abi.encodeWithSelector(selector, a));
    }
}

// =====================================================================================
// Job lifecycle, admin, withdraw and fee tests
// =====================================================================================

contract ComputeRentalTest is ComputeRentalFixture {
    // ================================================================ deployment & admin

    function test_Constructor_SetsRolesTreasuryAndParams() public view {
        vm.assertTrue(cr.hasRole(ADMIN_ROLE, admin));
        vm.assertTrue(cr.hasRole(ARBITER_ROLE, admin));
        vm.assertTrue(cr.hasRole(PAUSER_ROLE, admin));
        vm.assertEq(cr.treasury(), treasury);
        ComputeRental.Params memory p = cr.params();
        vm.assertEq(p.minStake, MIN_STAKE);
        vm.assertEq(p.unbondingDelay, UNBONDING_DELAY);
        vm.assertEq(p.slashBps, SLASH_BPS);
        vm.assertEq(p.challengeWindow, CHALLENGE_WINDOW);
        vm.assertEq(p.arbiterTimeout, ARBITER_TIMEOUT);
        vm.assertEq(p.acceptWindow, ACCEPT_WINDOW);
        vm.assertEq(p.minExecutionTimeout, MIN_EXEC);
        vm.assertEq(p.maxExecutionTimeout, MAX_EXEC);
        vm.assertEq(p.maxBidWindow, MAX_BID_WINDOW);
        vm.assertEq(cr.jobCount(), 0);
        vm.assertEq(cr.FEE_BPS(), 300);
        vm.assertEq(cr.NATIVE(), address(0));
    }

    function test_Constructor_EmitsTreasuryAndParams() public {
        ComputeRental.Params memory p = _defaultParams();
        vm.expectEmit(true, true, true, true);
        emit PaymentVault.TreasuryUpdated(address(0), treasury);
        vm.expectEmit(true, true, true, true);
        emit ComputeRental.ParamsUpdated(p);
        new ComputeRental(admin, treasury, p);
    }

    function test_RevertWhen_ConstructorAdminIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.ZeroAddress.selector));
        new ComputeRental(address(0), treasury, _defaultParams());
    }

    function test_RevertWhen_ConstructorTreasuryIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.ZeroAddress.selector));
        new ComputeRental(admin, address(0), _defaultParams());
    }

    function test_RevertWhen_ConstructorParamsInvalid() public {
        ComputeRental.Params memory p = _defaultParams();
        p.challengeWindow = 0;
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidParams.selector, "challengeWindow"));
        new ComputeRental(admin, treasury, p);
    }

    // ------------------------------------------------------------------ setParams

    function test_SetParams_UpdatesAndEmits() public {
        ComputeRental.Params memory p = ComputeRental.Params({
            minStake: 5 ether,
            unbondingDelay: 1 days,
            slashBps: 2_500,
            challengeWindow: 2 days,
            arbiterTimeout: 4 days,
            acceptWindow: 2 hours,
            minExecutionTimeout: 10 minutes,
            maxExecutionTimeout: 30 days,
            maxBidWindow: 14 days
        });
        _expectEmit();
        emit ComputeRental.ParamsUpdated(p);
        _setParams(p);
        ComputeRental.Params memory q = cr.params();
        vm.assertEq(q.minStake, 5 ether);
        vm.assertEq(q.unbondingDelay, 1 days);
        vm.assertEq(q.slashBps, 2_500);
        vm.assertEq(q.challengeWindow, 2 days);
        vm.assertEq(q.arbiterTimeout, 4 days);
        vm.assertEq(q.acceptWindow, 2 hours);
        vm.assertEq(q.minExecutionTimeout, 10 minutes);
        vm.assertEq(q.maxExecutionTimeout, 30 days);
        vm.assertEq(q.maxBidWindow, 14 days);
    }

    function test_SetParams_AcceptsBoundaryValues() public {
        ComputeRental.Params memory p = ComputeRental.Params({
            minStake: 0,
            unbondingDelay: MAX_WINDOW,
            slashBps: 10_000,
            challengeWindow: MAX_WINDOW,
            arbiterTimeout: MAX_WINDOW,
            acceptWindow: MAX_WINDOW,
            minExecutionTimeout: uint32(MAX_WINDOW),
            maxExecutionTimeout: uint32(MAX_WINDOW),
            maxBidWindow: MAX_WINDOW
        });
        _setParams(p);
        vm.assertEq(cr.params().slashBps, 10_000);
        vm.assertEq(cr.params().maxExecutionTimeout, MAX_WINDOW);

        // The lower ends: zero accept window and zero unbonding delay, windows of 1 second.
        p.unbondingDelay = 0;
        p.acceptWindow = 0;
        p.challengeWindow = 1;
        p.arbiterTimeout = 1;
        p.maxBidWindow = 1;
        p.minExecutionTimeout = 1;
        p.maxExecutionTimeout = 1;
        _setParams(p);
        vm.assertEq(cr.params().acceptWindow, 0);
        vm.assertEq(cr.params().unbondingDelay, 0);
        vm.assertEq(cr.params().maxExecutionTimeout, 1);
    }

    function test_RevertWhen_SetParams_CallerNotAdmin() public {
        ComputeRental.Params memory p = _defaultParams();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, ADMIN_ROLE)
        );
        vm.prank(stranger);
        cr.setParams(p);

        // The arbiter and the pauser are not admins either.
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, arbiter, ADMIN_ROLE)
        );
        vm.prank(arbiter);
        cr.setParams(p);
    }

    function _expectInvalidParams(ComputeRental.Params memory p, string memory reason) internal {
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidParams.selector, reason));
        vm.prank(admin);
        cr.setParams(p);
    }

    function test_RevertWhen_SetParams_SlashBpsAbove10000() public {
        ComputeRental.Params memory p = _defaultParams();
        p.slashBps = 10_001;
        _expectInvalidParams(p, "slashBps above 10000");
    }

    function test_RevertWhen_SetParams_ChallengeWindowZero() public {
        ComputeRental.Params memory p = _defaultParams();
        p.challengeWindow = 0;
        _expectInvalidParams(p, "challengeWindow");
    }

    function test_RevertWhen_SetParams_ChallengeWindowTooLong() public {
        ComputeRental.Params memory p = _defaultParams();
        p.challengeWindow = MAX_WINDOW + 1;
        _expectInvalidParams(p, "challengeWindow");
    }

    function test_RevertWhen_SetParams_ArbiterTimeoutZero() public {
        ComputeRental.Params memory p = _defaultParams();
        p.arbiterTimeout = 0;
        _expectInvalidParams(p, "arbiterTimeout");
    }

    function test_RevertWhen_SetParams_ArbiterTimeoutTooLong() public {
        ComputeRental.Params memory p = _defaultParams();
        p.arbiterTimeout = MAX_WINDOW + 1;
        _expectInvalidParams(p, "arbiterTimeout");
    }

    function test_RevertWhen_SetParams_AcceptWindowTooLong() public {
        ComputeRental.Params memory p = _defaultParams();
        p.acceptWindow = MAX_WINDOW + 1;
        _expectInvalidParams(p, "acceptWindow");
    }

    function test_RevertWhen_SetParams_UnbondingDelayTooLong() public {
        ComputeRental.Params memory p = _defaultParams();
        p.unbondingDelay = MAX_WINDOW + 1;
        _expectInvalidParams(p, "unbondingDelay");
    }

    function test_RevertWhen_SetParams_MaxBidWindowZero() public {
        ComputeRental.Params memory p = _defaultParams();
        p.maxBidWindow = 0;
        _expectInvalidParams(p, "maxBidWindow");
    }

    function test_RevertWhen_SetParams_MaxBidWindowTooLong() public {
        ComputeRental.Params memory p = _defaultParams();
        p.maxBidWindow = MAX_WINDOW + 1;
        _expectInvalidParams(p, "maxBidWindow");
    }

    function test_RevertWhen_SetParams_MinExecutionTimeoutZero() public {
        ComputeRental.Params memory p = _defaultParams();
        p.minExecutionTimeout = 0;
        _expectInvalidParams(p, "execution timeout bounds");
    }

    function test_RevertWhen_SetParams_MinExecutionTimeoutAboveMax() public {
        ComputeRental.Params memory p = _defaultParams();
        p.minExecutionTimeout = MAX_EXEC + 1;
        _expectInvalidParams(p, "execution timeout bounds");
    }

    function test_RevertWhen_SetParams_MaxExecutionTimeoutTooLong() public {
        ComputeRental.Params memory p = _defaultParams();
        p.maxExecutionTimeout = uint32(MAX_WINDOW) + 1;
        _expectInvalidParams(p, "maxExecutionTimeout");
    }

    function test_SetParams_InvalidLeavesParamsUnchanged() public {
        ComputeRental.Params memory p = _defaultParams();
        p.minStake = 99 ether;
        p.slashBps = 10_001;
        _expectInvalidParams(p, "slashBps above 10000");
        vm.assertEq(cr.params().minStake, MIN_STAKE);
        vm.assertEq(cr.params().slashBps, SLASH_BPS);
    }

    // ------------------------------------------------------------------ treasury, assets, pause

    function test_SetTreasury_UpdatesAndEmits() public {
        address newTreasury = makeAddr("newTreasury");
        _expectEmit();
        emit PaymentVault.TreasuryUpdated(treasury, newTreasury);
        vm.prank(admin);
        cr.setTreasury(newTreasury);
        vm.assertEq(cr.treasury(), newTreasury);
    }

    function test_RevertWhen_SetTreasury_Zero() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.ZeroAddress.selector));
        vm.prank(admin);
        cr.setTreasury(address(0));
    }

    function test_RevertWhen_SetTreasury_CallerNotAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, ADMIN_ROLE)
        );
        vm.prank(stranger);
        cr.setTreasury(stranger);
    }

    function test_SetAssetAllowed_TogglesAndEmits() public {
        TestToken other = new TestToken();
        vm.assertFalse(cr.isAllowedAsset(address(other)));
        _expectEmit();
        emit PaymentVault.AssetAllowanceSet(address(other), true);
        vm.prank(admin);
        cr.setAssetAllowed(address(other), true);
        vm.assertTrue(cr.assetAllowed(address(other)));
        vm.assertTrue(cr.isAllowedAsset(address(other)));

        _expectEmit();
        emit PaymentVault.AssetAllowanceSet(address(other), false);
        vm.prank(admin);
        cr.setAssetAllowed(address(other), false);
        vm.assertFalse(cr.isAllowedAsset(address(other)));
        // Native ETH is always allowed.
        vm.assertTrue(cr.isAllowedAsset(NATIVE));
    }

    function test_RevertWhen_SetAssetAllowed_Native() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.ZeroAddress.selector));
        vm.prank(admin);
        cr.setAssetAllowed(NATIVE, false);
    }

    function test_RevertWhen_SetAssetAllowed_CallerNotAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, ADMIN_ROLE)
        );
        vm.prank(stranger);
        cr.setAssetAllowed(address(token), false);
    }

    function test_PauseAndUnpause_ByPauser() public {
        _expectEmit();
        emit Pausable.Paused(pauser);
        _pause();
        vm.assertTrue(cr.paused());
        _expectEmit();
        emit Pausable.Unpaused(pauser);
        vm.prank(pauser);
        cr.unpause();
        vm.assertFalse(cr.paused());
    }

    function test_RevertWhen_Pause_CallerNotPauser() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, PAUSER_ROLE)
        );
        vm.prank(stranger);
        cr.pause();
    }

    function test_RevertWhen_Unpause_CallerNotPauser() public {
        _pause();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, arbiter, PAUSER_ROLE)
        );
        vm.prank(arbiter);
        cr.unpause();
    }

    function test_FeeOf_RoundsUp() public view {
        vm.assertEq(cr.feeOf(0), 0);
        vm.assertEq(cr.feeOf(1), 1);
        vm.assertEq(cr.feeOf(33), 1);
        vm.assertEq(cr.feeOf(34), 2);
        vm.assertEq(cr.feeOf(100), 3);
        vm.assertEq(cr.feeOf(101), 4);
        vm.assertEq(cr.feeOf(1 ether), 0.03 ether);
    }

    // ================================================================ postJob

    function test_PostJob_Eth() public {
        uint64 deadline = _bidDeadline();
        vm.deal(client, MAX_AMOUNT);
        _expectEmit();
        emit ComputeRental.JobPosted(1, client, NATIVE, MAX_AMOUNT, SPEC_HASH, SPEC_CID, deadline, EXEC_TIMEOUT);
        vm.prank(client);
        uint256 id = cr.postJob{value: MAX_AMOUNT}(NATIVE, MAX_AMOUNT, SPEC_HASH, SPEC_CID, deadline, EXEC_TIMEOUT);

        vm.assertEq(id, 1);
        vm.assertEq(cr.jobCount(), 1);
        ComputeRental.Job memory j = _job(id);
        vm.assertEq(j.client, client);
        vm.assertEq(j.asset, NATIVE);
        vm.assertEq(j.provider, address(0));
        vm.assertEq(uint256(j.state), uint256(ComputeRental.JobState.Open));
        vm.assertEq(j.bidDeadline, deadline);
        vm.assertEq(j.executionTimeout, EXEC_TIMEOUT);
        vm.assertEq(j.amount, MAX_AMOUNT);
        vm.assertEq(j.specHash, SPEC_HASH);
        vm.assertEq(j.resultHash, bytes32(0));
        vm.assertEq(client.balance, 0);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE + MAX_AMOUNT);
        _assertSolvent();
    }

    function test_PostJob_AllowedToken() public {
        uint64 deadline = _bidDeadline();
        token.mint(client, MAX_AMOUNT);
        vm.prank(client);
        token.approve(address(cr), MAX_AMOUNT);
        _expectEmit();
        emit ComputeRental.JobPosted(
            1, client, address(token), MAX_AMOUNT, SPEC_HASH, SPEC_CID, deadline, EXEC_TIMEOUT
        );
        vm.prank(client);
        uint256 id = cr.postJob(address(token), MAX_AMOUNT, SPEC_HASH, SPEC_CID, deadline, EXEC_TIMEOUT);

        vm.assertEq(_job(id).asset, address(token));
        vm.assertEq(_job(id).amount, MAX_AMOUNT);
        vm.assertEq(token.balanceOf(client), 0);
        vm.assertEq(token.balanceOf(address(cr)), MAX_AMOUNT);
        vm.assertEq(cr.totalEscrowed(address(token)), MAX_AMOUNT);
        _assertSolvent();
    }

    function test_PostJob_IncrementsJobIds() public {
        vm.assertEq(_postEth(), 1);
        vm.assertEq(_post(address(token), 1 ether), 2);
        vm.assertEq(_postEth(), 3);
        vm.assertEq(cr.jobCount(), 3);
    }

    function test_PostJob_AcceptsBoundaryDeadlineAndTimeouts() public {
        vm.deal(client, 2);
        vm.startPrank(client);
        uint256 a = cr.postJob{value: 1}(
            NATIVE, 1, SPEC_HASH, SPEC_CID, uint64(block.timestamp) + MAX_BID_WINDOW, MIN_EXEC
        );
        uint256 b = cr.postJob{value: 1}(NATIVE, 1, SPEC_HASH, SPEC_CID, uint64(block.timestamp) + 1, MAX_EXEC);
        vm.stopPrank();
        vm.assertEq(_job(a).bidDeadline, block.timestamp + MAX_BID_WINDOW);
        vm.assertEq(_job(a).executionTimeout, MIN_EXEC);
        vm.assertEq(_job(b).executionTimeout, MAX_EXEC);
    }

    function test_RevertWhen_PostJob_EmptySpecHash() public {
        vm.deal(client, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.EmptySpecHash.selector));
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 1 ether, bytes32(0), SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_BidDeadlineNotInFuture() public {
        vm.deal(client, 2 ether);
        uint64 nowTs = uint64(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidDeadline.selector, nowTs));
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 1 ether, SPEC_HASH, SPEC_CID, nowTs, EXEC_TIMEOUT);

        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidDeadline.selector, nowTs - 1));
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 1 ether, SPEC_HASH, SPEC_CID, nowTs - 1, EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_BidDeadlineBeyondMaxBidWindow() public {
        vm.deal(client, 1 ether);
        uint64 deadline = uint64(block.timestamp) + MAX_BID_WINDOW + 1;
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidDeadline.selector, deadline));
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 1 ether, SPEC_HASH, SPEC_CID, deadline, EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_ExecutionTimeoutBelowMin() public {
        vm.deal(client, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.InvalidExecutionTimeout.selector, MIN_EXEC - 1, MIN_EXEC, MAX_EXEC)
        );
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 1 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), MIN_EXEC - 1);
    }

    function test_RevertWhen_PostJob_ExecutionTimeoutAboveMax() public {
        vm.deal(client, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.InvalidExecutionTimeout.selector, MAX_EXEC + 1, MIN_EXEC, MAX_EXEC)
        );
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 1 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), MAX_EXEC + 1);
    }

    function test_RevertWhen_PostJob_ZeroAmount() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.ZeroAmount.selector));
        vm.prank(client);
        cr.postJob(NATIVE, 0, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_AssetNotAllowed() public {
        TestToken other = new TestToken();
        other.mint(client, 1 ether);
        vm.prank(client);
        other.approve(address(cr), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.AssetNotAllowed.selector, address(other)));
        vm.prank(client);
        cr.postJob(address(other), 1 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_AssetDisallowedAfterBeingAllowed() public {
        vm.prank(admin);
        cr.setAssetAllowed(address(token), false);
        token.mint(client, 1 ether);
        vm.prank(client);
        token.approve(address(cr), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.AssetNotAllowed.selector, address(token)));
        vm.prank(client);
        cr.postJob(address(token), 1 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_NativeValueTooLow() public {
        vm.deal(client, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.WrongPaymentValue.selector, 2 ether, 1 ether));
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 2 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_NativeValueTooHigh() public {
        vm.deal(client, 3 ether);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.WrongPaymentValue.selector, 2 ether, 3 ether));
        vm.prank(client);
        cr.postJob{value: 3 ether}(NATIVE, 2 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_TokenWithEthAttached() public {
        token.mint(client, 1 ether);
        vm.prank(client);
        token.approve(address(cr), 1 ether);
        vm.deal(client, 1);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.WrongPaymentValue.selector, 0, 1));
        vm.prank(client);
        cr.postJob{value: 1}(address(token), 1 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_TokenNotApproved() public {
        token.mint(client, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(cr), 0, 1 ether)
        );
        vm.prank(client);
        cr.postJob(address(token), 1 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_FeeOnTransferToken() public {
        FeeOnTransferToken feeToken = new FeeOnTransferToken();
        vm.prank(admin);
        cr.setAssetAllowed(address(feeToken), true);
        feeToken.mint(client, 100 ether);
        vm.prank(client);
        feeToken.approve(address(cr), 100 ether);
        vm.expectRevert(
            abi.encodeWithSelector(PaymentVault.UnsupportedToken.selector, address(feeToken), 100 ether, 99 ether)
        );
        vm.prank(client);
        cr.postJob(address(feeToken), 100 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    function test_RevertWhen_PostJob_Paused() public {
        _pause();
        vm.deal(client, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        vm.prank(client);
        cr.postJob{value: 1 ether}(NATIVE, 1 ether, SPEC_HASH, SPEC_CID, _bidDeadline(), EXEC_TIMEOUT);
    }

    // ================================================================ placeBid

    function test_PlaceBid_RecordsAndEmits() public {
        uint256 id = _postEth();
        _expectEmit();
        emit ComputeRental.BidPlaced(id, provider, PRICE);
        _bid(id, provider, PRICE);
        vm.assertEq(cr.bidOf(id, provider), PRICE);
        vm.assertEq(cr.bidOf(id, provider2), 0);
        _assertState(id, ComputeRental.JobState.Open);
    }

    function test_PlaceBid_RebidReplaces() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        _expectEmit();
        emit ComputeRental.BidPlaced(id, provider, 1 ether);
        _bid(id, provider, 1 ether);
        vm.assertEq(cr.bidOf(id, provider), 1 ether);
        // The old price can no longer be accepted; the new one can.
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.BidMismatch.selector, id, provider, 1 ether, PRICE)
        );
        _accept(id, provider, PRICE);
        _accept(id, provider, 1 ether);
        vm.assertEq(_job(id).amount, 1 ether);
    }

    function test_PlaceBid_SeveralProviders() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        _bid(id, provider2, MAX_AMOUNT);
        vm.assertEq(cr.bidOf(id, provider), PRICE);
        vm.assertEq(cr.bidOf(id, provider2), MAX_AMOUNT);
    }

    function test_PlaceBid_AtBidDeadline() public {
        uint256 id = _postEth();
        vm.warp(_job(id).bidDeadline);
        _bid(id, provider, PRICE);
        vm.assertEq(cr.bidOf(id, provider), PRICE);
    }

    function test_RevertWhen_PlaceBid_JobNotFound() public {
        _expectRevert(ComputeRental.JobNotFound.selector, 0);
        _bid(0, provider, PRICE);
        _expectRevert(ComputeRental.JobNotFound.selector, 7);
        _bid(7, provider, PRICE);
    }

    function test_RevertWhen_PlaceBid_JobNotOpen() public {
        uint256 id = _assignedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Assigned)
        );
        _bid(id, provider2, PRICE);
    }

    function test_RevertWhen_PlaceBid_AfterBidDeadline() public {
        uint256 id = _postEth();
        uint64 deadline = _job(id).bidDeadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.BidWindowClosed.selector, id, deadline));
        _bid(id, provider, PRICE);
    }

    function test_RevertWhen_PlaceBid_NotRegistered() public {
        uint256 id = _postEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotRegistered.selector, stranger));
        _bid(id, stranger, PRICE);
    }

    function test_RevertWhen_PlaceBid_ProviderUnbonding() public {
        uint256 id = _postEth();
        vm.prank(provider);
        cr.requestUnbond();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ProviderUnbonding.selector, provider));
        _bid(id, provider, PRICE);
    }

    function test_RevertWhen_PlaceBid_StakeBelowMinStake() public {
        uint256 id = _postEth();
        ComputeRental.Params memory p = _defaultParams();
        p.minStake = 2 ether;
        _setParams(p);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.StakeTooLow.selector, MIN_STAKE, 2 ether));
        _bid(id, provider, PRICE);
    }

    function test_RevertWhen_PlaceBid_PriceZero() public {
        uint256 id = _postEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidPrice.selector, 0, MAX_AMOUNT));
        _bid(id, provider, 0);
    }

    function test_RevertWhen_PlaceBid_PriceAboveEscrow() public {
        uint256 id = _postEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidPrice.selector, MAX_AMOUNT + 1, MAX_AMOUNT));
        _bid(id, provider, MAX_AMOUNT + 1);
    }

    function test_RevertWhen_PlaceBid_Paused() public {
        uint256 id = _postEth();
        _pause();
        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        _bid(id, provider, PRICE);
    }

    // ================================================================ acceptBid

    function test_AcceptBid_AssignsJob() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        _bid(id, provider2, 1 ether);
        uint64 executionDeadline = uint64(block.timestamp) + EXEC_TIMEOUT;

        _expectEmit();
        emit PaymentVault.Credited(client, NATIVE, MAX_AMOUNT - PRICE);
        _expectEmit();
        emit ComputeRental.JobAssigned(id, provider, PRICE, MAX_AMOUNT - PRICE, executionDeadline);
        _accept(id, provider, PRICE);

        ComputeRental.Job memory j = _job(id);
        vm.assertEq(uint256(j.state), uint256(ComputeRental.JobState.Assigned));
        vm.assertEq(j.provider, provider);
        vm.assertEq(j.amount, PRICE);
        vm.assertEq(j.executionDeadline, executionDeadline);
        vm.assertEq(_activeJobs(provider), 1);
        vm.assertEq(_activeJobs(provider2), 0);
        _assertSolvent();
    }

    function test_AcceptBid_RefundsExcess() public {
        uint256 id = _postEth();
        uint256 escrowBefore = cr.totalEscrowed(NATIVE);
        _bid(id, provider, PRICE);
        _accept(id, provider, PRICE);

        uint256 refund = MAX_AMOUNT - PRICE;
        vm.assertEq(cr.owed(client, NATIVE), refund);
        vm.assertEq(cr.totalOwed(NATIVE), refund);
        vm.assertEq(cr.totalEscrowed(NATIVE), escrowBefore - refund);
        _assertSolvent();

        // The refund is withdrawable right away.
        vm.prank(client);
        cr.withdraw(NATIVE);
        vm.assertEq(client.balance, refund);
        _assertSolvent();
    }

    function test_AcceptBid_FullPriceRefundsNothing() public {
        uint256 id = _postEth();
        _bid(id, provider, MAX_AMOUNT);
        vm.recordLogs();
        _accept(id, provider, MAX_AMOUNT);
        _assertNoEvent(vm.getRecordedLogs(), PaymentVault.Credited.selector);
        vm.assertEq(cr.owed(client, NATIVE), 0);
        vm.assertEq(cr.totalOwed(NATIVE), 0);
        vm.assertEq(_job(id).amount, MAX_AMOUNT);
    }

    function test_AcceptBid_TokenRefund() public {
        uint256 id = _post(address(token), 10 ether);
        _bid(id, provider, 4 ether);
        _accept(id, provider, 4 ether);
        vm.assertEq(cr.owed(client, address(token)), 6 ether);
        vm.assertEq(cr.totalEscrowed(address(token)), 4 ether);
        vm.assertEq(cr.owed(client, NATIVE), 0);
        _assertSolvent();
    }

    function test_AcceptBid_AtAcceptDeadline() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.warp(_job(id).bidDeadline + ACCEPT_WINDOW);
        _accept(id, provider, PRICE);
        _assertState(id, ComputeRental.JobState.Assigned);
        vm.assertEq(_job(id).executionDeadline, block.timestamp + EXEC_TIMEOUT);
    }

    function test_RevertWhen_AcceptBid_CallerNotClient() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotClient.selector, id, provider));
        vm.prank(provider);
        cr.acceptBid(id, provider, PRICE);
    }

    function test_RevertWhen_AcceptBid_JobNotFound() public {
        _expectRevert(ComputeRental.JobNotFound.selector, 3);
        _accept(3, provider, PRICE);
    }

    function test_RevertWhen_AcceptBid_JobNotOpen() public {
        uint256 id = _assignedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Assigned)
        );
        _accept(id, provider, PRICE);
    }

    function test_RevertWhen_AcceptBid_AfterAcceptWindow() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        uint64 acceptDeadline = _job(id).bidDeadline + ACCEPT_WINDOW;
        vm.warp(acceptDeadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.AcceptWindowClosed.selector, id, acceptDeadline));
        _accept(id, provider, PRICE);
    }

    function test_RevertWhen_AcceptBid_NoSuchBid() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NoSuchBid.selector, id, provider2));
        _accept(id, provider2, PRICE);
    }

    function test_RevertWhen_AcceptBid_PriceMismatch() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.BidMismatch.selector, id, provider, PRICE, 1 ether));
        _accept(id, provider, 1 ether);
    }

    function test_RevertWhen_AcceptBid_ProviderUnbonding() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.prank(provider);
        cr.requestUnbond();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ProviderUnbonding.selector, provider));
        _accept(id, provider, PRICE);
    }

    function test_RevertWhen_AcceptBid_ProviderLeftRegistry() public {
        ComputeRental.Params memory p = _defaultParams();
        p.unbondingDelay = 0;
        _setParams(p);
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.startPrank(provider);
        cr.requestUnbond();
        cr.completeUnbond();
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotRegistered.selector, provider));
        _accept(id, provider, PRICE);
    }

    function test_RevertWhen_AcceptBid_ProviderStakeSlashedBelowMin() public {
        // provider bids on a second job, then fails its first job and is slashed below minStake.
        uint256 first = _assignedEth();
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.warp(_job(first).executionDeadline + 1); // still inside the second job's bid window
        cr.failJob(first);
        uint256 remaining = MIN_STAKE - MIN_STAKE * SLASH_BPS / 10_000;

        vm.expectRevert(abi.encodeWithSelector(ComputeRental.StakeTooLow.selector, remaining, MIN_STAKE));
        _accept(id, provider, PRICE);
        // ...and it can no longer bid either.
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.StakeTooLow.selector, remaining, MIN_STAKE));
        _bid(id, provider, 1 ether);
    }

    function test_RevertWhen_AcceptBid_ProviderStakeBelowRaisedMin() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        ComputeRental.Params memory p = _defaultParams();
        p.minStake = 3 ether;
        _setParams(p);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.StakeTooLow.selector, MIN_STAKE, 3 ether));
        _accept(id, provider, PRICE);
    }

    function test_RevertWhen_AcceptBid_Paused() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        _pause();
        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        _accept(id, provider, PRICE);
    }

    // ================================================================ submitResult

    function test_SubmitResult_OpensChallengeWindow() public {
        uint256 id = _assignedEth();
        uint64 challengeEnd = uint64(block.timestamp) + CHALLENGE_WINDOW;
        _expectEmit();
        emit ComputeRental.ResultSubmitted(id, provider, RESULT_HASH, RESULT_CID, challengeEnd);
        _submit(id);
        ComputeRental.Job memory j = _job(id);
        vm.assertEq(uint256(j.state), uint256(ComputeRental.JobState.Submitted));
        vm.assertEq(j.resultHash, RESULT_HASH);
        vm.assertEq(j.challengeEnd, challengeEnd);
        vm.assertEq(_activeJobs(provider), 1);
    }

    function test_SubmitResult_AtExecutionDeadline() public {
        uint256 id = _assignedEth();
        vm.warp(_job(id).executionDeadline);
        _submit(id);
        _assertState(id, ComputeRental.JobState.Submitted);
    }

    function test_SubmitResult_WhileUnbonding() public {
        uint256 id = _assignedEth();
        vm.prank(provider);
        cr.requestUnbond();
        _submit(id);
        _assertState(id, ComputeRental.JobState.Submitted);
    }

    function test_SubmitResult_NotBlockedByPause() public {
        uint256 id = _assignedEth();
        _pause();
        _submit(id);
        _assertState(id, ComputeRental.JobState.Submitted);
    }

    function test_RevertWhen_SubmitResult_CallerNotAssignedProvider() public {
        uint256 id = _assignedEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotAssignedProvider.selector, id, provider2));
        vm.prank(provider2);
        cr.submitResult(id, RESULT_HASH, RESULT_CID);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotAssignedProvider.selector, id, client));
        vm.prank(client);
        cr.submitResult(id, RESULT_HASH, RESULT_CID);
    }

    function test_RevertWhen_SubmitResult_AfterExecutionDeadline() public {
        uint256 id = _assignedEth();
        uint64 deadline = _job(id).executionDeadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ExecutionDeadlinePassed.selector, id, deadline));
        _submit(id);
    }

    function test_RevertWhen_SubmitResult_EmptyResultHash() public {
        uint256 id = _assignedEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.EmptyResultHash.selector));
        vm.prank(provider);
        cr.submitResult(id, bytes32(0), RESULT_CID);
    }

    function test_RevertWhen_SubmitResult_JobNotAssigned() public {
        uint256 id = _postEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Open));
        _submit(id);
        _expectRevert(ComputeRental.JobNotFound.selector, 42);
        _submit(42);
    }

    function test_RevertWhen_SubmitResult_Twice() public {
        uint256 id = _submittedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Submitted)
        );
        _submit(id);
    }

    // ================================================================ acceptResult / finalize

    function test_AcceptResult_PaysProviderMinusFee() public {
        uint256 id = _submittedEth();
        uint256 fee = _expectedFee(PRICE);
        uint256 payout = PRICE - fee;
        vm.assertEq(fee, 0.045 ether);

        _expectEmit();
        emit PaymentVault.Credited(treasury, NATIVE, fee);
        _expectEmit();
        emit PaymentVault.FeeCharged(NATIVE, treasury, fee);
        _expectEmit();
        emit PaymentVault.Credited(provider, NATIVE, payout);
        _expectEmit();
        emit ComputeRental.JobCompleted(id, provider, payout, fee, true);
        vm.prank(client);
        cr.acceptResult(id);

        _assertState(id, ComputeRental.JobState.Completed);
        vm.assertEq(cr.owed(provider, NATIVE), payout);
        vm.assertEq(cr.owed(treasury, NATIVE), fee);
        vm.assertEq(_activeJobs(provider), 0);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE);
        _assertSolvent();
    }

    function test_AcceptResult_TokenJob() public {
        uint256 id = _submitted(address(token), 10 ether, 5 ether);
        vm.prank(client);
        cr.acceptResult(id);
        vm.assertEq(cr.owed(provider, address(token)), 5 ether - 0.15 ether);
        vm.assertEq(cr.owed(treasury, address(token)), 0.15 ether);
        vm.assertEq(cr.owed(client, address(token)), 5 ether);
        vm.assertEq(cr.totalEscrowed(address(token)), 0);
        vm.assertEq(cr.owed(treasury, NATIVE), 0);
        _assertSolvent();
    }

    function test_AcceptResult_AfterChallengeWindow() public {
        uint256 id = _submittedEth();
        vm.warp(_job(id).challengeEnd + 10 days);
        vm.prank(client);
        cr.acceptResult(id);
        _assertState(id, ComputeRental.JobState.Completed);
    }

    function test_AcceptResult_NotBlockedByPause() public {
        uint256 id = _submittedEth();
        _pause();
        vm.prank(client);
        cr.acceptResult(id);
        _assertState(id, ComputeRental.JobState.Completed);
    }

    function test_RevertWhen_AcceptResult_CallerNotClient() public {
        uint256 id = _submittedEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotClient.selector, id, provider));
        vm.prank(provider);
        cr.acceptResult(id);
    }

    function test_RevertWhen_AcceptResult_NotSubmitted() public {
        uint256 id = _assignedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Assigned)
        );
        vm.prank(client);
        cr.acceptResult(id);
    }

    function test_RevertWhen_AcceptResult_Twice() public {
        uint256 id = _submittedEth();
        vm.prank(client);
        cr.acceptResult(id);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Completed)
        );
        vm.prank(client);
        cr.acceptResult(id);
    }

    function test_Finalize_AfterChallengeWindow() public {
        uint256 id = _submittedEth();
        uint256 fee = _expectedFee(PRICE);
        vm.warp(_job(id).challengeEnd + 1);
        _expectEmit();
        emit ComputeRental.JobCompleted(id, provider, PRICE - fee, fee, false);
        vm.prank(stranger);
        cr.finalize(id);
        _assertState(id, ComputeRental.JobState.Completed);
        vm.assertEq(cr.owed(provider, NATIVE), PRICE - fee);
        vm.assertEq(cr.owed(treasury, NATIVE), fee);
        vm.assertEq(_activeJobs(provider), 0);
        _assertSolvent();
    }

    function test_Finalize_NotBlockedByPause() public {
        uint256 id = _submittedEth();
        _pause();
        vm.warp(_job(id).challengeEnd + 1);
        cr.finalize(id);
        _assertState(id, ComputeRental.JobState.Completed);
    }

    function test_RevertWhen_Finalize_ChallengeWindowOpen() public {
        uint256 id = _submittedEth();
        uint64 challengeEnd = _job(id).challengeEnd;
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ChallengeWindowOpen.selector, id, challengeEnd));
        cr.finalize(id);
        vm.warp(challengeEnd);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ChallengeWindowOpen.selector, id, challengeEnd));
        cr.finalize(id);
    }

    function test_RevertWhen_Finalize_Disputed() public {
        uint256 id = _disputedEth();
        vm.warp(_job(id).challengeEnd + 1);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Disputed)
        );
        cr.finalize(id);
    }

    function test_RevertWhen_Finalize_JobNotFound() public {
        _expectRevert(ComputeRental.JobNotFound.selector, 1);
        cr.finalize(1);
    }

    // ================================================================ cancelJob

    function test_CancelJob_RefundsWholeEscrow() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        _expectEmit();
        emit PaymentVault.Credited(client, NATIVE, MAX_AMOUNT);
        _expectEmit();
        emit ComputeRental.JobCancelled(id, MAX_AMOUNT);
        vm.prank(client);
        cr.cancelJob(id);
        _assertState(id, ComputeRental.JobState.Cancelled);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT);
        vm.assertEq(cr.owed(treasury, NATIVE), 0);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE);
        _assertSolvent();
    }

    function test_CancelJob_TokenJob() public {
        uint256 id = _post(address(token), 3 ether);
        vm.prank(client);
        cr.cancelJob(id);
        vm.assertEq(cr.owed(client, address(token)), 3 ether);
        vm.assertEq(cr.totalEscrowed(address(token)), 0);
        _assertSolvent();
    }

    function test_CancelJob_AfterBidDeadline() public {
        uint256 id = _postEth();
        vm.warp(_job(id).bidDeadline + ACCEPT_WINDOW + 1);
        vm.prank(client);
        cr.cancelJob(id);
        _assertState(id, ComputeRental.JobState.Cancelled);
    }

    function test_CancelJob_NotBlockedByPause() public {
        uint256 id = _postEth();
        _pause();
        vm.prank(client);
        cr.cancelJob(id);
        _assertState(id, ComputeRental.JobState.Cancelled);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT);
    }

    function test_RevertWhen_CancelJob_CallerNotClient() public {
        uint256 id = _postEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotClient.selector, id, stranger));
        vm.prank(stranger);
        cr.cancelJob(id);
    }

    function test_RevertWhen_CancelJob_JobAssigned() public {
        uint256 id = _assignedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Assigned)
        );
        vm.prank(client);
        cr.cancelJob(id);
    }

    function test_RevertWhen_CancelJob_Twice() public {
        uint256 id = _postEth();
        vm.prank(client);
        cr.cancelJob(id);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Cancelled)
        );
        vm.prank(client);
        cr.cancelJob(id);
    }

    // ================================================================ expireJob

    function test_ExpireJob_AfterAcceptWindow() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        vm.warp(_job(id).bidDeadline + ACCEPT_WINDOW + 1);
        _expectEmit();
        emit PaymentVault.Credited(client, NATIVE, MAX_AMOUNT);
        _expectEmit();
        emit ComputeRental.JobExpired(id, MAX_AMOUNT);
        vm.prank(stranger);
        cr.expireJob(id);
        _assertState(id, ComputeRental.JobState.Expired);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT);
        vm.assertEq(cr.owed(stranger, NATIVE), 0);
        _assertSolvent();
    }

    function test_ExpireJob_NotBlockedByPause() public {
        uint256 id = _postEth();
        _pause();
        vm.warp(_job(id).bidDeadline + ACCEPT_WINDOW + 1);
        cr.expireJob(id);
        _assertState(id, ComputeRental.JobState.Expired);
    }

    function test_RevertWhen_ExpireJob_AcceptWindowOpen() public {
        uint256 id = _postEth();
        uint64 acceptDeadline = _job(id).bidDeadline + ACCEPT_WINDOW;
        vm.warp(acceptDeadline);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.DeadlineNotReached.selector, id, acceptDeadline));
        cr.expireJob(id);
    }

    function test_RevertWhen_ExpireJob_JobAssigned() public {
        uint256 id = _assignedEth();
        vm.warp(block.timestamp + 30 days);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Assigned)
        );
        cr.expireJob(id);
    }

    /// @dev Params documents: "Every job snapshots the window it is in when the window opens, so
    /// a change never moves a deadline that is already running." The acceptance window is NOT
    /// snapshotted: acceptBid/expireJob read `_params.acceptWindow` live. This test exposes it:
    /// once the accept window of a job is running, the admin shortening it makes the job
    /// expirable at once and blocks the client's acceptance.
    function test_AcceptDeadline_NotMovedByParamsChange() public {
        uint256 id = _postEth();
        _bid(id, provider, PRICE);
        uint64 acceptDeadline = _job(id).bidDeadline + ACCEPT_WINDOW;
        vm.warp(_job(id).bidDeadline + 1); // the accept window is now running

        ComputeRental.Params memory p = _defaultParams();
        p.acceptWindow = 0;
        _setParams(p);

        // The running deadline must not move: the job cannot be expired before it...
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.DeadlineNotReached.selector, id, acceptDeadline));
        vm.prank(stranger);
        cr.expireJob(id);
        // ...and the client can still accept the bid.
        _accept(id, provider, PRICE);
        _assertState(id, ComputeRental.JobState.Assigned);
    }

    // ================================================================ failJob

    function test_FailJob_RefundsAndSlashes() public {
        uint256 id = _assignedEth();
        uint256 slashed = MIN_STAKE * SLASH_BPS / 10_000;
        vm.warp(_job(id).executionDeadline + 1);

        _expectEmit();
        emit PaymentVault.Credited(client, NATIVE, PRICE);
        _expectEmit();
        emit PaymentVault.Credited(client, NATIVE, slashed);
        _expectEmit();
        emit ComputeRental.ProviderSlashed(provider, id, slashed, client);
        _expectEmit();
        emit ComputeRental.JobFailed(id, provider, PRICE, slashed);
        vm.prank(stranger);
        cr.failJob(id);

        _assertState(id, ComputeRental.JobState.Failed);
        // Excess refund at acceptance + price refund + slash.
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT + slashed);
        vm.assertEq(cr.owed(treasury, NATIVE), 0);
        vm.assertEq(cr.getProvider(provider).stake, MIN_STAKE - slashed);
        vm.assertEq(_activeJobs(provider), 0);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE - slashed);
        vm.assertFalse(cr.isActiveProvider(provider));
        _assertSolvent();
    }

    function test_FailJob_TokenJobSlashPaidInEth() public {
        uint256 id = _assigned(address(token), 10 ether, 8 ether);
        vm.warp(_job(id).executionDeadline + 1);
        cr.failJob(id);
        uint256 slashed = MIN_STAKE * SLASH_BPS / 10_000;
        vm.assertEq(cr.owed(client, address(token)), 10 ether);
        vm.assertEq(cr.owed(client, NATIVE), slashed);
        vm.assertEq(cr.totalEscrowed(address(token)), 0);
        _assertSolvent();
    }

    function test_FailJob_ZeroSlashBpsSlashesNothing() public {
        ComputeRental.Params memory p = _defaultParams();
        p.slashBps = 0;
        _setParams(p);
        uint256 id = _assignedEth();
        vm.warp(_job(id).executionDeadline + 1);
        vm.recordLogs();
        _expectEmit();
        emit ComputeRental.JobFailed(id, provider, PRICE, 0);
        cr.failJob(id);
        _assertNoEvent(vm.getRecordedLogs(), ComputeRental.ProviderSlashed.selector);
        vm.assertEq(cr.getProvider(provider).stake, MIN_STAKE);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT);
        vm.assertTrue(cr.isActiveProvider(provider));
        _assertSolvent();
    }

    function test_FailJob_FullSlash() public {
        ComputeRental.Params memory p = _defaultParams();
        p.slashBps = 10_000;
        _setParams(p);
        uint256 id = _assignedEth();
        vm.warp(_job(id).executionDeadline + 1);
        cr.failJob(id);
        vm.assertEq(cr.getProvider(provider).stake, 0);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT + MIN_STAKE);
        _assertSolvent();
    }

    function test_FailJob_NotBlockedByPause() public {
        uint256 id = _assignedEth();
        _pause();
        vm.warp(_job(id).executionDeadline + 1);
        cr.failJob(id);
        _assertState(id, ComputeRental.JobState.Failed);
    }

    function test_RevertWhen_FailJob_ExecutionDeadlineNotReached() public {
        uint256 id = _assignedEth();
        uint64 deadline = _job(id).executionDeadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.DeadlineNotReached.selector, id, deadline));
        cr.failJob(id);
    }

    function test_RevertWhen_FailJob_ResultSubmitted() public {
        uint256 id = _submittedEth();
        vm.warp(_job(id).executionDeadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Submitted)
        );
        cr.failJob(id);
    }

    // ================================================================ dispute

    function test_Dispute_ByClientWithinChallengeWindow() public {
        uint256 id = _submittedEth();
        uint64 disputeDeadline = uint64(block.timestamp) + ARBITER_TIMEOUT;
        _expectEmit();
        emit ComputeRental.JobDisputed(id, client, REASON_CID, disputeDeadline);
        vm.prank(client);
        cr.dispute(id, REASON_CID);
        _assertState(id, ComputeRental.JobState.Disputed);
        vm.assertEq(_job(id).disputeDeadline, disputeDeadline);
        vm.assertEq(_activeJobs(provider), 1);
        // Nothing moves on a dispute.
        vm.assertEq(cr.owed(provider, NATIVE), 0);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE + PRICE);
    }

    function test_Dispute_AtChallengeEnd() public {
        uint256 id = _submittedEth();
        vm.warp(_job(id).challengeEnd);
        vm.prank(client);
        cr.dispute(id, REASON_CID);
        _assertState(id, ComputeRental.JobState.Disputed);
    }

    function test_RevertWhen_Dispute_CallerNotClient() public {
        uint256 id = _submittedEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotClient.selector, id, stranger));
        vm.prank(stranger);
        cr.dispute(id, REASON_CID);
    }

    function test_RevertWhen_Dispute_ChallengeWindowClosed() public {
        uint256 id = _submittedEth();
        uint64 challengeEnd = _job(id).challengeEnd;
        vm.warp(challengeEnd + 1);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ChallengeWindowClosed.selector, id, challengeEnd));
        vm.prank(client);
        cr.dispute(id, REASON_CID);
    }

    function test_RevertWhen_Dispute_NotSubmitted() public {
        uint256 id = _assignedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Assigned)
        );
        vm.prank(client);
        cr.dispute(id, REASON_CID);
    }

    function test_RevertWhen_Dispute_Twice() public {
        uint256 id = _disputedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Disputed)
        );
        vm.prank(client);
        cr.dispute(id, REASON_CID);
    }

    // ================================================================ resolveDispute

    function test_ResolveDispute_AllToClient() public {
        uint256 id = _disputedEth();
        vm.recordLogs();
        _expectEmit();
        emit PaymentVault.Credited(client, NATIVE, PRICE);
        _expectEmit();
        emit ComputeRental.DisputeResolved(id, arbiter, 0, 0, 0, PRICE);
        vm.prank(arbiter);
        cr.resolveDispute(id, 0);
        _assertNoEvent(vm.getRecordedLogs(), PaymentVault.FeeCharged.selector);

        _assertState(id, ComputeRental.JobState.Resolved);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT); // excess + whole price back
        vm.assertEq(cr.owed(provider, NATIVE), 0);
        vm.assertEq(cr.owed(treasury, NATIVE), 0);
        vm.assertEq(_activeJobs(provider), 0);
        vm.assertEq(cr.getProvider(provider).stake, MIN_STAKE); // no slash on disputes
        _assertSolvent();
    }

    function test_ResolveDispute_AllToProvider() public {
        uint256 id = _disputedEth();
        uint256 fee = _expectedFee(PRICE);
        _expectEmit();
        emit PaymentVault.Credited(treasury, NATIVE, fee);
        _expectEmit();
        emit PaymentVault.FeeCharged(NATIVE, treasury, fee);
        _expectEmit();
        emit PaymentVault.Credited(provider, NATIVE, PRICE - fee);
        _expectEmit();
        emit ComputeRental.DisputeResolved(id, arbiter, 10_000, PRICE - fee, fee, 0);
        vm.prank(arbiter);
        cr.resolveDispute(id, 10_000);

        vm.assertEq(cr.owed(provider, NATIVE), PRICE - fee);
        vm.assertEq(cr.owed(treasury, NATIVE), fee);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT - PRICE); // only the acceptance refund
        vm.assertEq(_activeJobs(provider), 0);
        _assertSolvent();
    }

    function test_ResolveDispute_SplitChargesFeeOnlyOnProviderPart() public {
        uint256 id = _disputedEth();
        uint16 bps = 2_500;
        uint256 providerShare = PRICE * bps / 10_000; // 0.375 ether
        uint256 fee = _expectedFee(providerShare); // 0.01125 ether
        uint256 clientRefund = PRICE - providerShare;
        vm.assertEq(fee, 0.01125 ether);

        _expectEmit();
        emit ComputeRental.DisputeResolved(id, admin, bps, providerShare - fee, fee, clientRefund);
        vm.prank(admin); // the admin holds ARBITER_ROLE too
        cr.resolveDispute(id, bps);

        vm.assertEq(cr.owed(provider, NATIVE), providerShare - fee);
        vm.assertEq(cr.owed(treasury, NATIVE), fee);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT - PRICE + clientRefund);
        _assertSolvent();
    }

    function test_ResolveDispute_TokenJob() public {
        uint256 id = _disputed(address(token), 10 ether, 10 ether);
        vm.prank(arbiter);
        cr.resolveDispute(id, 5_000);
        vm.assertEq(cr.owed(provider, address(token)), 5 ether - 0.15 ether);
        vm.assertEq(cr.owed(treasury, address(token)), 0.15 ether);
        vm.assertEq(cr.owed(client, address(token)), 5 ether);
        _assertSolvent();
    }

    function test_ResolveDispute_AfterArbiterTimeoutIfNotYetTimedOut() public {
        uint256 id = _disputedEth();
        vm.warp(_job(id).disputeDeadline + 1 days);
        vm.prank(arbiter);
        cr.resolveDispute(id, 10_000);
        _assertState(id, ComputeRental.JobState.Resolved);
    }

    function test_ResolveDispute_NotBlockedByPause() public {
        uint256 id = _disputedEth();
        _pause();
        vm.prank(arbiter);
        cr.resolveDispute(id, 5_000);
        _assertState(id, ComputeRental.JobState.Resolved);
    }

    function test_RevertWhen_ResolveDispute_CallerNotArbiter() public {
        uint256 id = _disputedEth();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, client, ARBITER_ROLE)
        );
        vm.prank(client);
        cr.resolveDispute(id, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, pauser, ARBITER_ROLE)
        );
        vm.prank(pauser);
        cr.resolveDispute(id, 0);
    }

    function test_RevertWhen_ResolveDispute_ShareAbove10000() public {
        uint256 id = _disputedEth();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.InvalidShare.selector, uint16(10_001)));
        vm.prank(arbiter);
        cr.resolveDispute(id, 10_001);
    }

    function test_RevertWhen_ResolveDispute_NotDisputed() public {
        uint256 id = _submittedEth();
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Submitted)
        );
        vm.prank(arbiter);
        cr.resolveDispute(id, 0);
    }

    // ================================================================ resolveDisputeTimeout

    function test_ResolveDisputeTimeout_RefundsClient() public {
        uint256 id = _disputedEth();
        vm.warp(_job(id).disputeDeadline + 1);
        _expectEmit();
        emit PaymentVault.Credited(client, NATIVE, PRICE);
        _expectEmit();
        emit ComputeRental.DisputeTimedOut(id, PRICE);
        vm.prank(stranger);
        cr.resolveDisputeTimeout(id);

        _assertState(id, ComputeRental.JobState.Resolved);
        vm.assertEq(cr.owed(client, NATIVE), MAX_AMOUNT);
        vm.assertEq(cr.owed(provider, NATIVE), 0);
        vm.assertEq(cr.owed(treasury, NATIVE), 0);
        vm.assertEq(_activeJobs(provider), 0);
        vm.assertEq(cr.getProvider(provider).stake, MIN_STAKE);
        _assertSolvent();

        // The arbiter can no longer resolve it.
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Resolved)
        );
        vm.prank(arbiter);
        cr.resolveDispute(id, 10_000);
    }

    function test_ResolveDisputeTimeout_NotBlockedByPause() public {
        uint256 id = _disputedEth();
        _pause();
        vm.warp(_job(id).disputeDeadline + 1);
        cr.resolveDisputeTimeout(id);
        _assertState(id, ComputeRental.JobState.Resolved);
    }

    function test_RevertWhen_ResolveDisputeTimeout_DeadlineNotReached() public {
        uint256 id = _disputedEth();
        uint64 deadline = _job(id).disputeDeadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.DeadlineNotReached.selector, id, deadline));
        cr.resolveDisputeTimeout(id);
    }

    function test_RevertWhen_ResolveDisputeTimeout_NotDisputed() public {
        uint256 id = _submittedEth();
        vm.warp(block.timestamp + 30 days);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Submitted)
        );
        cr.resolveDisputeTimeout(id);
    }

    function test_RevertWhen_ResolveDisputeTimeout_AlreadyResolved() public {
        uint256 id = _disputedEth();
        vm.prank(arbiter);
        cr.resolveDispute(id, 0);
        vm.warp(_job(id).disputeDeadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.WrongJobState.selector, id, ComputeRental.JobState.Resolved)
        );
        cr.resolveDisputeTimeout(id);
    }

    // ================================================================ withdraw

    function test_Withdraw_Eth() public {
        uint256 id = _postEth();
        vm.prank(client);
        cr.cancelJob(id);
        uint256 contractBefore = address(cr).balance;

        _expectEmit();
        emit PaymentVault.Withdrawn(client, NATIVE, MAX_AMOUNT);
        vm.prank(client);
        cr.withdraw(NATIVE);

        vm.assertEq(client.balance, MAX_AMOUNT);
        vm.assertEq(address(cr).balance, contractBefore - MAX_AMOUNT);
        vm.assertEq(cr.owed(client, NATIVE), 0);
        vm.assertEq(cr.totalOwed(NATIVE), 0);
        _assertSolvent();
    }

    function test_Withdraw_Token() public {
        uint256 id = _submitted(address(token), 10 ether, 10 ether);
        vm.prank(client);
        cr.acceptResult(id);
        uint256 payout = 10 ether - 0.3 ether;

        _expectEmit();
        emit PaymentVault.Withdrawn(provider, address(token), payout);
        vm.prank(provider);
        cr.withdraw(address(token));

        vm.assertEq(token.balanceOf(provider), payout);
        vm.assertEq(token.balanceOf(address(cr)), 0.3 ether);
        vm.assertEq(cr.owed(provider, address(token)), 0);
        vm.assertEq(cr.totalOwed(address(token)), 0.3 ether);
        _assertSolvent();

        vm.prank(treasury);
        cr.withdraw(address(token));
        vm.assertEq(token.balanceOf(treasury), 0.3 ether);
        vm.assertEq(token.balanceOf(address(cr)), 0);
        _assertSolvent();
    }

    function test_Withdraw_TreasuryReceivesExactlyFee() public {
        uint256 id = _submittedEth();
        vm.prank(client);
        cr.acceptResult(id);
        uint256 fee = _expectedFee(PRICE);

        vm.prank(treasury);
        cr.withdraw(NATIVE);
        vm.assertEq(treasury.balance, fee);

        vm.prank(provider);
        cr.withdraw(NATIVE);
        vm.assertEq(provider.balance, PRICE - fee);

        vm.prank(client);
        cr.withdraw(NATIVE);
        vm.assertEq(client.balance, MAX_AMOUNT - PRICE);

        // Only the two stakes remain.
        vm.assertEq(address(cr).balance, 2 * MIN_STAKE);
        vm.assertEq(cr.totalOwed(NATIVE), 0);
        _assertSolvent();
    }

    function test_Withdraw_FeesStayWithTreasuryThatEarnedThem() public {
        uint256 first = _submittedEth();
        vm.prank(client);
        cr.acceptResult(first);
        uint256 fee = _expectedFee(PRICE);

        address newTreasury = makeAddr("newTreasury");
        vm.prank(admin);
        cr.setTreasury(newTreasury);

        uint256 second = _submittedEth();
        vm.prank(client);
        cr.acceptResult(second);

        vm.assertEq(cr.owed(treasury, NATIVE), fee);
        vm.assertEq(cr.owed(newTreasury, NATIVE), fee);
        vm.prank(treasury);
        cr.withdraw(NATIVE);
        vm.assertEq(treasury.balance, fee);
    }

    function test_Withdraw_NotBlockedByPause() public {
        uint256 id = _postEth();
        vm.prank(client);
        cr.cancelJob(id);
        _pause();
        vm.prank(client);
        cr.withdraw(NATIVE);
        vm.assertEq(client.balance, MAX_AMOUNT);
    }

    function test_Withdraw_DisallowedTokenStillWithdrawable() public {
        uint256 id = _post(address(token), 1 ether);
        vm.prank(admin);
        cr.setAssetAllowed(address(token), false);
        vm.prank(client);
        cr.cancelJob(id);
        vm.prank(client);
        cr.withdraw(address(token));
        vm.assertEq(token.balanceOf(client), 1 ether);
    }

    function test_RevertWhen_Withdraw_NothingOwed() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.NothingOwed.selector, stranger, NATIVE));
        vm.prank(stranger);
        cr.withdraw(NATIVE);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.NothingOwed.selector, stranger, address(token)));
        vm.prank(stranger);
        cr.withdraw(address(token));
    }

    function test_RevertWhen_Withdraw_Twice() public {
        uint256 id = _postEth();
        vm.prank(client);
        cr.cancelJob(id);
        vm.prank(client);
        cr.withdraw(NATIVE);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.NothingOwed.selector, client, NATIVE));
        vm.prank(client);
        cr.withdraw(NATIVE);
    }

    function test_RevertWhen_Withdraw_RecipientRejectsEth() public {
        EthRejectingClient rejecter = new EthRejectingClient(cr);
        vm.deal(address(rejecter), 1 ether);
        vm.prank(address(rejecter));
        rejecter.postAndCancel(1 ether, SPEC_HASH, _bidDeadline(), EXEC_TIMEOUT);
        vm.assertEq(cr.owed(address(rejecter), NATIVE), 1 ether);

        vm.expectRevert(
            abi.encodeWithSelector(PaymentVault.NativeTransferFailed.selector, address(rejecter), 1 ether)
        );
        rejecter.withdraw();
        // The whole withdrawal reverted: still owed.
        vm.assertEq(cr.owed(address(rejecter), NATIVE), 1 ether);
        _assertSolvent();
    }

    function test_Withdraw_ReentrancyBlocked() public {
        ReentrantClient attacker = new ReentrantClient(cr);
        vm.deal(address(attacker), 1 ether);
        attacker.postAndCancel(1 ether, SPEC_HASH, _bidDeadline(), EXEC_TIMEOUT);
        attacker.withdraw();
        vm.assertTrue(attacker.reentered());
        vm.assertEq(
            attacker.reentryError(), abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector)
        );
        vm.assertEq(address(attacker).balance, 1 ether);
        vm.assertEq(cr.owed(address(attacker), NATIVE), 0);
        _assertSolvent();
    }

    // ================================================================ fuzz: fee split and solvency

    function testFuzz_FeeOfMatchesCeil(uint256 amount) public view {
        uint256 fee = cr.feeOf(amount);
        vm.assertEq(fee, _expectedFee(amount));
        vm.assertLe(fee, amount);
        // fee >= floor(amount * 3 / 100), written without overflow.
        vm.assertGe(fee, (amount / 100) * 3 + ((amount % 100) * 3) / 100);
    }

    function testFuzz_FeeSplitExact(uint256 price) public {
        price = bound(price, 1, 1e30);
        uint256 id = _submitted(NATIVE, price, price);
        vm.prank(client);
        cr.acceptResult(id);

        uint256 payout = cr.owed(provider, NATIVE);
        uint256 fee = cr.owed(treasury, NATIVE);
        vm.assertEq(payout + fee, price, "payout + fee != price");
        vm.assertEq(fee, (price * 300 + 9_999) / 10_000, "fee != ceil(price * 3%)");
        vm.assertGe(fee, price * 3 / 100, "rounding must favour the protocol");
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE);
        _assertSolvent();
    }

    function testFuzz_FeeSplitExact_Finalize(uint256 amount, uint256 price) public {
        amount = bound(amount, 1, 1e30);
        price = bound(price, 1, amount);
        uint256 id = _submitted(NATIVE, amount, price);
        vm.warp(_job(id).challengeEnd + 1);
        cr.finalize(id);

        uint256 payout = cr.owed(provider, NATIVE);
        uint256 fee = cr.owed(treasury, NATIVE);
        vm.assertEq(payout + fee, price);
        vm.assertEq(fee, (price * 300 + 9_999) / 10_000);
        vm.assertGe(fee, price * 3 / 100);
        vm.assertEq(cr.owed(client, NATIVE), amount - price);
        _assertSolvent();
    }

    function testFuzz_FeeSplitExact_TokenFullRange(uint256 price) public {
        price = bound(price, 1, type(uint256).max);
        uint256 id = _submitted(address(token), price, price);
        vm.prank(client);
        cr.acceptResult(id);

        uint256 payout = cr.owed(provider, address(token));
        uint256 fee = cr.owed(treasury, address(token));
        vm.assertEq(payout + fee, price);
        vm.assertEq(fee, _expectedFee(price));
        vm.assertGe(fee, (price / 100) * 3 + ((price % 100) * 3) / 100);
        _assertSolvent();
    }

    function testFuzz_DisputeSplitExact(uint256 price, uint16 providerBps) public {
        price = bound(price, 1, 1e30);
        providerBps = uint16(bound(providerBps, 0, 10_000));
        uint256 id = _disputed(NATIVE, price, price);
        vm.prank(arbiter);
        cr.resolveDispute(id, providerBps);

        uint256 providerShare = price * providerBps / 10_000;
        uint256 payout = cr.owed(provider, NATIVE);
        uint256 fee = cr.owed(treasury, NATIVE);
        uint256 refund = cr.owed(client, NATIVE);
        vm.assertEq(payout + fee + refund, price, "split does not add up to the price");
        vm.assertEq(payout + fee, providerShare, "provider part");
        vm.assertEq(refund, price - providerShare, "client refund is fee-free");
        vm.assertEq(fee, (providerShare * 300 + 9_999) / 10_000, "fee != ceil(share * 3%)");
        vm.assertGe(fee, providerShare * 3 / 100);
        vm.assertEq(_activeJobs(provider), 0);
        _assertSolvent();
    }

    function testFuzz_DisputeSplitExact_Token(uint256 price, uint16 providerBps) public {
        price = bound(price, 1, type(uint128).max);
        providerBps = uint16(bound(providerBps, 0, 10_000));
        uint256 id = _disputed(address(token), price, price);
        vm.prank(arbiter);
        cr.resolveDispute(id, providerBps);

        uint256 providerShare = price * providerBps / 10_000;
        uint256 fee = cr.owed(treasury, address(token));
        vm.assertEq(cr.owed(provider, address(token)) + fee, providerShare);
        vm.assertEq(cr.owed(client, address(token)), price - providerShare);
        vm.assertEq(fee, _expectedFee(providerShare));
        _assertSolvent();
    }

    function testFuzz_AcceptBidRefundsExcess(uint256 amount, uint256 price) public {
        amount = bound(amount, 1, 1e30);
        price = bound(price, 1, amount);
        uint256 id = _assigned(NATIVE, amount, price);
        vm.assertEq(cr.owed(client, NATIVE), amount - price);
        vm.assertEq(_job(id).amount, price);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE + price);
        _assertSolvent();
    }

    function testFuzz_FailJobSlash(uint256 stake, uint16 slashBps, uint256 price) public {
        stake = bound(stake, MIN_STAKE, 1e30);
        slashBps = uint16(bound(slashBps, 0, 10_000));
        price = bound(price, 1, 1e30);
        ComputeRental.Params memory p = _defaultParams();
        p.slashBps = slashBps;
        _setParams(p);
        address big = makeAddr("bigProvider");
        _registerWith(big, stake);

        uint256 id = _post(NATIVE, price);
        _bid(id, big, price);
        _accept(id, big, price);
        vm.warp(_job(id).executionDeadline + 1);
        cr.failJob(id);

        uint256 slashed = stake * slashBps / 10_000;
        vm.assertEq(cr.owed(client, NATIVE), price + slashed);
        vm.assertEq(cr.getProvider(big).stake, stake - slashed);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE + stake - slashed);
        _assertSolvent();
    }

    function testFuzz_WithdrawMovesExactBalances(uint256 price) public {
        price = bound(price, 1, 1e30);
        uint256 id = _submitted(NATIVE, price, price);
        vm.prank(client);
        cr.acceptResult(id);
        uint256 fee = cr.owed(treasury, NATIVE);
        uint256 payout = cr.owed(provider, NATIVE);

        if (payout == 0) {
            // Tiny prices: the whole price is the (rounded-up) fee and nothing is owed.
            vm.expectRevert(abi.encodeWithSelector(PaymentVault.NothingOwed.selector, provider, NATIVE));
        }
        vm.prank(provider);
        cr.withdraw(NATIVE);
        vm.prank(treasury);
        cr.withdraw(NATIVE);
        vm.assertEq(provider.balance + treasury.balance, price);
        vm.assertEq(treasury.balance, fee);
        vm.assertEq(address(cr).balance, 2 * MIN_STAKE);
        vm.assertEq(cr.totalOwed(NATIVE), 0);
        _assertSolvent();
    }
}
