// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ComputeRentalFixture} from "./ComputeRental.t.sol";
import {ComputeRental} from "../src/ComputeRental.sol";
import {PaymentVault} from "../src/PaymentVault.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @notice The provider registry: registration, stake, metadata and unbonding.
contract ComputeRentalProvidersTest is ComputeRentalFixture {
    address internal newcomer;

    function setUp() public override {
        super.setUp();
        newcomer = makeAddr("newcomer");
        vm.deal(newcomer, 100 ether);
    }

    function _requestUnbond(address who) internal returns (uint64 availableAt) {
        vm.prank(who);
        cr.requestUnbond();
        availableAt = cr.getProvider(who).unbondingAt;
    }

    // ================================================================ registerProvider

    function test_RegisterProvider_RecordsStakeAndEmits() public {
        uint256 escrowBefore = cr.totalEscrowed(NATIVE);
        _expectEmit();
        emit ComputeRental.ProviderRegistered(newcomer, 2 ether, PROVIDER_CID);
        vm.prank(newcomer);
        cr.registerProvider{value: 2 ether}(PROVIDER_CID);

        ComputeRental.Provider memory p = cr.getProvider(newcomer);
        vm.assertTrue(p.registered);
        vm.assertEq(p.stake, 2 ether);
        vm.assertEq(p.unbondingAt, 0);
        vm.assertEq(p.activeJobs, 0);
        vm.assertEq(p.metadataCid, PROVIDER_CID);
        vm.assertTrue(cr.isActiveProvider(newcomer));
        vm.assertEq(cr.totalEscrowed(NATIVE), escrowBefore + 2 ether);
        vm.assertEq(newcomer.balance, 98 ether);
        _assertSolvent();
    }

    function test_RegisterProvider_ExactlyMinStake() public {
        vm.prank(newcomer);
        cr.registerProvider{value: MIN_STAKE}(PROVIDER_CID);
        vm.assertEq(cr.getProvider(newcomer).stake, MIN_STAKE);
        vm.assertTrue(cr.isActiveProvider(newcomer));
    }

    function test_RegisterProvider_WithZeroMinStakeNeedsSomeStake() public {
        ComputeRental.Params memory p = _defaultParams();
        p.minStake = 0;
        _setParams(p);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.StakeTooLow.selector, 0, 0));
        vm.prank(newcomer);
        cr.registerProvider{value: 0}(PROVIDER_CID);

        vm.prank(newcomer);
        cr.registerProvider{value: 1}(PROVIDER_CID);
        vm.assertEq(cr.getProvider(newcomer).stake, 1);
    }

    function test_RevertWhen_RegisterProvider_StakeBelowMin() public {
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.StakeTooLow.selector, MIN_STAKE - 1, MIN_STAKE));
        vm.prank(newcomer);
        cr.registerProvider{value: MIN_STAKE - 1}(PROVIDER_CID);
        vm.assertFalse(cr.getProvider(newcomer).registered);
    }

    function test_RevertWhen_RegisterProvider_AlreadyRegistered() public {
        vm.deal(provider, 5 ether);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.AlreadyRegistered.selector, provider));
        vm.prank(provider);
        cr.registerProvider{value: 5 ether}("other");
        vm.assertEq(cr.getProvider(provider).stake, MIN_STAKE);
    }

    function test_RevertWhen_RegisterProvider_Paused() public {
        _pause();
        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        vm.prank(newcomer);
        cr.registerProvider{value: MIN_STAKE}(PROVIDER_CID);
    }

    function test_IsActiveProvider_FalseForUnknown() public view {
        vm.assertFalse(cr.isActiveProvider(newcomer));
        vm.assertFalse(cr.getProvider(newcomer).registered);
    }

    // ================================================================ addStake

    function test_AddStake_IncreasesStakeAndEmits() public {
        vm.deal(provider, 3 ether);
        _expectEmit();
        emit ComputeRental.StakeAdded(provider, 3 ether, MIN_STAKE + 3 ether);
        vm.prank(provider);
        cr.addStake{value: 3 ether}();
        vm.assertEq(cr.getProvider(provider).stake, MIN_STAKE + 3 ether);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE + 3 ether);
        _assertSolvent();
    }

    function test_AddStake_RestoresActiveAfterMinStakeRaised() public {
        ComputeRental.Params memory p = _defaultParams();
        p.minStake = 2 ether;
        _setParams(p);
        vm.assertFalse(cr.isActiveProvider(provider));
        vm.deal(provider, 1 ether);
        vm.prank(provider);
        cr.addStake{value: 1 ether}();
        vm.assertTrue(cr.isActiveProvider(provider));
    }

    function test_RevertWhen_AddStake_NotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotRegistered.selector, newcomer));
        vm.prank(newcomer);
        cr.addStake{value: 1 ether}();
    }

    function test_RevertWhen_AddStake_ZeroValue() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.ZeroAmount.selector));
        vm.prank(provider);
        cr.addStake();
    }

    function test_RevertWhen_AddStake_Paused() public {
        _pause();
        vm.deal(provider, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        vm.prank(provider);
        cr.addStake{value: 1 ether}();
    }

    // ================================================================ updateProviderMetadata

    function test_UpdateProviderMetadata_StoresAndEmits() public {
        _expectEmit();
        emit ComputeRental.ProviderMetadataUpdated(provider, "bafy-new");
        vm.prank(provider);
        cr.updateProviderMetadata("bafy-new");
        vm.assertEq(cr.getProvider(provider).metadataCid, "bafy-new");
        vm.assertEq(cr.getProvider(provider).stake, MIN_STAKE);
    }

    function test_UpdateProviderMetadata_NotBlockedByPause() public {
        _pause();
        vm.prank(provider);
        cr.updateProviderMetadata("bafy-paused");
        vm.assertEq(cr.getProvider(provider).metadataCid, "bafy-paused");
    }

    function test_RevertWhen_UpdateProviderMetadata_NotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotRegistered.selector, newcomer));
        vm.prank(newcomer);
        cr.updateProviderMetadata("bafy-x");
    }

    // ================================================================ requestUnbond

    function test_RequestUnbond_SetsAvailableAtAndEmits() public {
        uint64 availableAt = uint64(block.timestamp) + UNBONDING_DELAY;
        _expectEmit();
        emit ComputeRental.UnbondingRequested(provider, availableAt);
        vm.prank(provider);
        cr.requestUnbond();
        vm.assertEq(cr.getProvider(provider).unbondingAt, availableAt);
        vm.assertFalse(cr.isActiveProvider(provider));
        vm.assertTrue(cr.getProvider(provider).registered);
        // The stake is still escrowed.
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE);
    }

    function test_RequestUnbond_NotBlockedByPause() public {
        _pause();
        uint64 availableAt = _requestUnbond(provider);
        vm.assertEq(availableAt, block.timestamp + UNBONDING_DELAY);
    }

    function test_RequestUnbond_WithActiveJobStillAllowed() public {
        _assignedEth();
        uint64 availableAt = _requestUnbond(provider);
        vm.assertEq(availableAt, block.timestamp + UNBONDING_DELAY);
        vm.assertEq(_activeJobs(provider), 1);
    }

    function test_RevertWhen_RequestUnbond_NotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotRegistered.selector, newcomer));
        vm.prank(newcomer);
        cr.requestUnbond();
    }

    function test_RevertWhen_RequestUnbond_AlreadyUnbonding() public {
        uint64 availableAt = _requestUnbond(provider);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ProviderUnbonding.selector, provider));
        vm.prank(provider);
        cr.requestUnbond();
        // The first request's time is kept.
        vm.assertEq(cr.getProvider(provider).unbondingAt, availableAt);
    }

    // ================================================================ completeUnbond

    function test_CompleteUnbond_CreditsStakeAndDeletesProvider() public {
        uint64 availableAt = _requestUnbond(provider);
        vm.warp(availableAt);
        _expectEmit();
        emit PaymentVault.Credited(provider, NATIVE, MIN_STAKE);
        _expectEmit();
        emit ComputeRental.ProviderUnbonded(provider, MIN_STAKE);
        vm.prank(provider);
        cr.completeUnbond();

        ComputeRental.Provider memory p = cr.getProvider(provider);
        vm.assertFalse(p.registered);
        vm.assertEq(p.stake, 0);
        vm.assertEq(p.unbondingAt, 0);
        vm.assertEq(p.metadataCid, "");
        vm.assertEq(cr.owed(provider, NATIVE), MIN_STAKE);
        vm.assertEq(cr.totalEscrowed(NATIVE), MIN_STAKE);
        _assertSolvent();

        uint256 before = provider.balance;
        vm.prank(provider);
        cr.withdraw(NATIVE);
        vm.assertEq(provider.balance, before + MIN_STAKE);
        _assertSolvent();
    }

    function test_CompleteUnbond_NotBlockedByPause() public {
        uint64 availableAt = _requestUnbond(provider);
        _pause();
        vm.warp(availableAt);
        vm.prank(provider);
        cr.completeUnbond();
        vm.assertEq(cr.owed(provider, NATIVE), MIN_STAKE);
    }

    function test_CompleteUnbond_AfterSlashCreditsRemainingStake() public {
        uint256 id = _assignedEth();
        _requestUnbond(provider);
        vm.warp(_job(id).executionDeadline + 1);
        cr.failJob(id); // the stake stays slashable while unbonding
        uint256 remaining = MIN_STAKE - MIN_STAKE * SLASH_BPS / 10_000;

        vm.warp(block.timestamp + UNBONDING_DELAY);
        vm.prank(provider);
        cr.completeUnbond();
        vm.assertEq(cr.owed(provider, NATIVE), remaining);
        _assertSolvent();
    }

    function test_CompleteUnbond_ThenRegisterAgain() public {
        uint64 availableAt = _requestUnbond(provider);
        vm.warp(availableAt);
        vm.prank(provider);
        cr.completeUnbond();

        vm.deal(provider, 2 ether);
        vm.prank(provider);
        cr.registerProvider{value: 2 ether}("bafy-again");
        ComputeRental.Provider memory p = cr.getProvider(provider);
        vm.assertTrue(p.registered);
        vm.assertEq(p.stake, 2 ether);
        vm.assertEq(p.unbondingAt, 0);
        vm.assertTrue(cr.isActiveProvider(provider));
        vm.assertEq(cr.owed(provider, NATIVE), MIN_STAKE); // the old stake is still withdrawable
        _assertSolvent();
    }

    function test_CompleteUnbond_AfterActiveJobsFinish() public {
        uint256 id = _submittedEth();
        uint64 availableAt = _requestUnbond(provider);
        vm.warp(availableAt);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ProviderHasActiveJobs.selector, provider, uint32(1)));
        vm.prank(provider);
        cr.completeUnbond();

        vm.prank(client);
        cr.acceptResult(id);
        vm.prank(provider);
        cr.completeUnbond();
        // Stake plus job payout are owed.
        vm.assertEq(cr.owed(provider, NATIVE), MIN_STAKE + PRICE - _expectedFee(PRICE));
        _assertSolvent();
    }

    function test_RevertWhen_CompleteUnbond_ActiveJobs() public {
        _assignedEth();
        uint256 second = _post(NATIVE, MAX_AMOUNT);
        _bid(second, provider, 1 ether);
        _accept(second, provider, 1 ether);
        vm.assertEq(_activeJobs(provider), 2);

        uint64 availableAt = _requestUnbond(provider);
        vm.warp(availableAt + 365 days);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ProviderHasActiveJobs.selector, provider, uint32(2)));
        vm.prank(provider);
        cr.completeUnbond();
        vm.assertTrue(cr.getProvider(provider).registered);
    }

    function test_RevertWhen_CompleteUnbond_DisputedJobActive() public {
        uint256 id = _disputedEth();
        uint64 availableAt = _requestUnbond(provider);
        vm.warp(availableAt);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.ProviderHasActiveJobs.selector, provider, uint32(1)));
        vm.prank(provider);
        cr.completeUnbond();

        cr.resolveDisputeTimeout(id);
        vm.prank(provider);
        cr.completeUnbond();
        vm.assertEq(cr.owed(provider, NATIVE), MIN_STAKE);
    }

    function test_RevertWhen_CompleteUnbond_NotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotRegistered.selector, newcomer));
        vm.prank(newcomer);
        cr.completeUnbond();
    }

    function test_RevertWhen_CompleteUnbond_NotUnbonding() public {
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotUnbonding.selector, provider));
        vm.prank(provider);
        cr.completeUnbond();
    }

    function test_RevertWhen_CompleteUnbond_DelayNotPassed() public {
        uint64 availableAt = _requestUnbond(provider);
        vm.expectRevert(
            abi.encodeWithSelector(ComputeRental.UnbondingNotReady.selector, availableAt, uint64(block.timestamp))
        );
        vm.prank(provider);
        cr.completeUnbond();

        vm.warp(availableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.UnbondingNotReady.selector, availableAt, availableAt - 1));
        vm.prank(provider);
        cr.completeUnbond();
    }

    function test_RevertWhen_CompleteUnbond_Twice() public {
        uint64 availableAt = _requestUnbond(provider);
        vm.warp(availableAt);
        vm.prank(provider);
        cr.completeUnbond();
        vm.expectRevert(abi.encodeWithSelector(ComputeRental.NotRegistered.selector, provider));
        vm.prank(provider);
        cr.completeUnbond();
        vm.assertEq(cr.owed(provider, NATIVE), MIN_STAKE);
    }

    function test_UnbondingDelaySnapshotted() public {
        uint64 availableAt = _requestUnbond(provider);
        ComputeRental.Params memory p = _defaultParams();
        p.unbondingDelay = 30 days;
        _setParams(p);
        vm.warp(availableAt);
        vm.prank(provider);
        cr.completeUnbond();
        vm.assertFalse(cr.getProvider(provider).registered);
    }

    // ================================================================ fuzz

    function testFuzz_RegisterAddStakeUnbond(uint256 stake, uint256 extra) public {
        stake = bound(stake, MIN_STAKE, 1e30);
        extra = bound(extra, 1, 1e30);
        vm.deal(newcomer, stake + extra);
        vm.prank(newcomer);
        cr.registerProvider{value: stake}(PROVIDER_CID);
        vm.prank(newcomer);
        cr.addStake{value: extra}();
        vm.assertEq(cr.getProvider(newcomer).stake, stake + extra);
        _assertSolvent();

        uint64 availableAt = _requestUnbond(newcomer);
        vm.warp(availableAt);
        vm.prank(newcomer);
        cr.completeUnbond();
        vm.prank(newcomer);
        cr.withdraw(NATIVE);
        vm.assertEq(newcomer.balance, stake + extra);
        vm.assertEq(cr.totalEscrowed(NATIVE), 2 * MIN_STAKE);
        _assertSolvent();
    }
}
