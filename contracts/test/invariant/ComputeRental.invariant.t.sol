// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {ComputeRental} from "../../src/ComputeRental.sol";
import {TestToken} from "../../src/mocks/TestToken.sol";
import {ComputeRentalHandler} from "./ComputeRentalHandler.sol";

/// @dev Stateful fuzzing of ComputeRental through ComputeRentalHandler. CI runs it at 10,000
/// runs per invariant: `FOUNDRY_PROFILE=ci forge test --match-path 'contracts/test/invariant/*'`.
/// Each invariant is evaluated after every handler call, so the checks keep external calls to a
/// minimum (forge charges ~10 us per call frame) and call vm.assert* only once a check has failed.
/// Every call into the contract is a low-level call whose outcome the handler's model predicts:
/// expected reverts are swallowed (so forge's `reverts` column stays 0) and any surprise, an
/// unexpected success or an unexpected revert, is counted and fails invariant_TerminalStatesFinal.
contract ComputeRentalInvariantTest is TestBase {
    ComputeRental internal cr;
    TestToken internal token;
    ComputeRentalHandler internal handler;
    /// Storage slot of ComputeRental's job mapping, plus one; 0 when setUp could not find it
    /// (states are then read through getJob).
    uint256 internal jobsSlotPlusOne;

    function setUp() public {
        vm.warp(1_700_000_000);
        address admin = makeAddr("admin");
        address arbiter = makeAddr("arbiter");
        token = new TestToken();
        cr = new ComputeRental(
            admin,
            makeAddr("treasury"),
            ComputeRental.Params({
                minStake: 1 ether,
                unbondingDelay: 1 days,
                slashBps: 1_000,
                challengeWindow: 1 days,
                arbiterTimeout: 2 days,
                acceptWindow: 1 days,
                minExecutionTimeout: 1 hours,
                maxExecutionTimeout: 1 days,
                maxBidWindow: 2 days
            })
        );
        vm.startPrank(admin);
        cr.setAssetAllowed(address(token), true);
        cr.grantRole(keccak256("ARBITER_ROLE"), arbiter);
        vm.stopPrank();

        handler = new ComputeRentalHandler(cr, token, admin, arbiter, makeAddr("treasury2"));
        // Every provider starts registered, so jobs can be bid on from the first call.
        for (uint256 i = 0; i < 3; i++) {
            handler.providerAction(i, 1 ether + i * 0.5 ether);
        }
        handler.seedJobs();
        jobsSlotPlusOne = _findJobsSlot();

        bytes4[] memory selectors = new bytes4[](14);
        selectors[0] = ComputeRentalHandler.providerAction.selector;
        selectors[1] = ComputeRentalHandler.postJob.selector;
        selectors[2] = ComputeRentalHandler.placeBid.selector;
        selectors[3] = ComputeRentalHandler.acceptBid.selector;
        selectors[4] = ComputeRentalHandler.submitResult.selector;
        selectors[5] = ComputeRentalHandler.dispute.selector;
        selectors[6] = ComputeRentalHandler.completeJob.selector;
        selectors[7] = ComputeRentalHandler.closeOpenJob.selector;
        selectors[8] = ComputeRentalHandler.failJob.selector;
        selectors[9] = ComputeRentalHandler.settleDispute.selector;
        selectors[10] = ComputeRentalHandler.advance.selector;
        selectors[11] = ComputeRentalHandler.withdraw.selector;
        selectors[12] = ComputeRentalHandler.warp.selector;
        selectors[13] = ComputeRentalHandler.adminAction.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        excludeSender(address(cr));
        excludeSender(address(handler));
    }

    // ------------------------------------------------------------------ 1. solvency

    /// For ETH and the token: balance == totalEscrowed + totalOwed; totalOwed equals the sum of
    /// owed[] over every actor and both treasuries as the model tracks it (each account's owed
    /// is re-read against the model whenever it changes: owedMismatches); totalEscrowed equals
    /// the model's live jobs plus stakes; and the balance equals deposits minus withdrawals.
    function invariant_Solvent() public view {
        (
            uint256[2] memory escrowed,
            uint256[2] memory owedSum,
            uint256[2] memory deposited,
            uint256[2] memory withdrawn,
            uint256 owedMismatches,
            uint256 underflows
        ) = handler.solvencyTotals();
        for (uint256 i = 0; i < 2; i++) {
            address asset = i == 0 ? address(0) : address(token);
            uint256 bal = i == 0 ? address(cr).balance : token.balanceOf(address(cr));
            uint256 totalEscrowed = cr.totalEscrowed(asset);
            uint256 totalOwed = cr.totalOwed(asset);
            _eq(bal, totalEscrowed + totalOwed, "balance != totalEscrowed + totalOwed");
            _eq(totalOwed, owedSum[i], "totalOwed != sum of owed over actors + treasuries");
            _eq(totalEscrowed, escrowed[i], "totalEscrowed != live jobs + stakes (model)");
            _eq(bal, deposited[i] - withdrawn[i], "balance != deposits - withdrawals");
        }
        _eq(owedMismatches, 0, "an account's owed differs from the model");
        _eq(underflows, 0, "model underflow");
    }

    // ------------------------------------------------------------------ 2. at-most-once payout

    /// Every job settles at most once (one settling call, one settlement event); what a job
    /// credits (refund at accept + settlement) never exceeds its escrow, and a settled job has
    /// released exactly its escrow.
    function invariant_AtMostOncePayout() public view {
        (uint256 id, string memory reason) = handler.checkJobs();
        if (id != 0) vm.assertEq(id, 0, string.concat(reason, " (left: the id)"));
    }

    // ------------------------------------------------------------------ 3. terminal states are final

    /// Once a job is Completed, Cancelled, Expired, Failed or Resolved its on-chain state never
    /// changes: the model records the terminal state when the settling call succeeds and never
    /// leaves it, and every check re-reads each terminal job. Also fails on any call that
    /// succeeded or reverted against the model's prediction (a second settlement, a settlement
    /// from the wrong state, a timeout before its deadline, a live job in the wrong state).
    function invariant_TerminalStatesFinal() public view {
        (uint256 divergences, uint256[] memory ids, uint8[] memory recorded) = handler.terminalJobs();
        for (uint256 i = 0; i < ids.length; i++) {
            uint8 st = _state(ids[i]);
            if (st != recorded[i]) vm.assertEq(uint256(st), uint256(recorded[i]), "a terminal job state changed");
        }
        _eq(divergences, 0, "a call succeeded or reverted against the model");
    }

    // ------------------------------------------------------------------ 4. payout + fee == price

    /// Completed: provider payout + fee == price, fee exactly 3% rounded up. Resolved by the
    /// arbiter: provider payout + fee + client refund == price, fee on the provider's share only.
    /// Each settlement is measured from owed[] when it happens and compared with the model and
    /// the contract's own event (mismatch counter); the running sums re-check it in aggregate.
    function invariant_PayoutPlusFeeEqualsPrice() public view {
        (uint256 mismatches, uint256 completedPrice, uint256 completedSplit, uint256 resolvedPrice, uint256 resolvedSplit)
        = handler.priceTotals();
        _eq(mismatches, 0, "a settlement credited other amounts than the model/event");
        _eq(completedSplit, completedPrice, "completed: payout + fee != price");
        _eq(resolvedSplit, resolvedPrice, "resolved: payout + fee + refund != price");
    }

    // ------------------------------------------------------------------ helpers

    /// Calls the (comparatively expensive) cheatcode only once the check has failed.
    function _eq(uint256 a, uint256 b, string memory reason) internal pure {
        if (a != b) vm.assertEq(a, b, reason);
    }

    /// A job's state. vm.load reads one slot where getJob copies the whole struct, and this
    /// runs for every terminal job after every call.
    function _state(uint256 id) internal view returns (uint8) {
        if (jobsSlotPlusOne == 0) return uint8(cr.getJob(id).state);
        return _loadState(id, jobsSlotPlusOne - 1);
    }

    /// Job layout: client (slot +0), asset (+1), then provider and state packed in slot +2,
    /// state at byte offset 20.
    function _loadState(uint256 id, uint256 mappingSlot) internal view returns (uint8) {
        uint256 base = uint256(keccak256(abi.encode(id, mappingSlot)));
        return uint8(uint256(vm.load(address(cr), bytes32(base + 2))) >> 160);
    }

    /// Finds the job mapping's slot by matching the seeded jobs (distinct clients and states)
    /// against getJob; returns 0 if the layout is not the expected one.
    function _findJobsSlot() internal view returns (uint256) {
        uint256 n = cr.jobCount();
        for (uint256 s = 0; s < 64; s++) {
            bool all = n != 0;
            for (uint256 id = 1; id <= n && all; id++) {
                ComputeRental.Job memory j = cr.getJob(id);
                bytes32 base = keccak256(abi.encode(id, s));
                all = vm.load(address(cr), base) == bytes32(uint256(uint160(j.client)))
                    && _loadState(id, s) == uint8(j.state);
            }
            if (all) return s + 1;
        }
        return 0;
    }
}
