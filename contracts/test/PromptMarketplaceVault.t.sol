// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PromptMarketplaceBase, EthRejecter, ReentrantPayee} from "./PromptMarketplaceBase.t.sol";
import {PromptMarketplace} from "../src/PromptMarketplace.sol";
import {PaymentVault} from "../src/PaymentVault.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @notice Withdrawals, the treasury, the asset allow-list after the fact, and what pausing
/// blocks and does not block.
contract PromptMarketplaceVaultTest is PromptMarketplaceBase {
    /// @dev creator sells a fresh prompt to bob at `price` in `asset`; returns the token id.
    function _sale(address asset, uint256 price) internal returns (uint256 tokenId) {
        tokenId = _mint(creator);
        _list(creator, tokenId, asset, price);
        _buy(bob, tokenId, asset, price);
    }

    function _setTreasury(address treasury_) internal {
        vm.prank(admin);
        market.setTreasury(treasury_);
    }

    // ================================================================ withdraw

    function test_Withdraw_NativeProceeds() public {
        _sale(NATIVE, PRICE);
        uint256 owed = PRICE - _fee(PRICE);
        uint256 before = creator.balance;

        _expectMarketEmit();
        emit PaymentVault.Withdrawn(creator, NATIVE, owed);
        _withdraw(creator, NATIVE);

        vm.assertEq(creator.balance, before + owed, "ETH received");
        vm.assertEq(_owed(creator, NATIVE), 0, "owed cleared");
        vm.assertEq(market.totalOwed(NATIVE), _fee(PRICE), "only the fee left owed");
        vm.assertEq(address(market).balance, _fee(PRICE), "vault keeps the fee");
        _assertSolvent(NATIVE);
    }

    function test_Withdraw_TokenProceeds() public {
        uint256 price = 40e18;
        _sale(address(token), price);
        uint256 owed = price - _fee(price);
        uint256 before = token.balanceOf(creator);

        _expectMarketEmit();
        emit PaymentVault.Withdrawn(creator, address(token), owed);
        _withdraw(creator, address(token));

        vm.assertEq(token.balanceOf(creator), before + owed, "tokens received");
        vm.assertEq(_owed(creator, address(token)), 0, "owed cleared");
        _assertSolvent(address(token));
    }

    function test_Withdraw_TreasuryGetsExactlyTheFees() public {
        _sale(NATIVE, PRICE);
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        _deliver(creator, licenseId, _key(licenseId));
        uint256 fees = _fee(PRICE) + _fee(LICENSE_PRICE);
        uint256 before = treasury.balance;

        _withdraw(treasury, NATIVE);

        vm.assertEq(treasury.balance - before, fees, "treasury receives fees");
        vm.assertEq(fees, 0.036 ether, "3% of 1.2 ether");
    }

    function test_Withdraw_EveryoneOutEmptiesVault() public {
        _sale(address(token), 77e18 + 3);
        _withdraw(creator, address(token));
        _withdraw(treasury, address(token));
        vm.assertEq(token.balanceOf(address(market)), 0);
        vm.assertEq(market.totalOwed(address(token)), 0);
    }

    function test_RevertWhen_WithdrawNothingOwed() public {
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.NothingOwed.selector, stranger, NATIVE));
        _withdraw(stranger, NATIVE);
    }

    function test_RevertWhen_WithdrawTwice() public {
        _sale(NATIVE, PRICE);
        _withdraw(creator, NATIVE);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.NothingOwed.selector, creator, NATIVE));
        _withdraw(creator, NATIVE);
    }

    function test_RevertWhen_WithdrawOtherAssetNothingOwed() public {
        _sale(NATIVE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.NothingOwed.selector, creator, address(token)));
        _withdraw(creator, address(token));
    }

    function test_RevertWhen_WithdrawNativeToRejectingPayee() public {
        EthRejecter rejecter = new EthRejecter();
        _setTreasury(address(rejecter));
        _sale(NATIVE, PRICE);
        uint256 fee = _fee(PRICE);

        vm.expectRevert(abi.encodeWithSelector(PaymentVault.NativeTransferFailed.selector, address(rejecter), fee));
        rejecter.withdrawFrom(market, NATIVE);

        vm.assertEq(_owed(address(rejecter), NATIVE), fee, "still owed");
    }

    function test_Withdraw_ReentryIsBlocked() public {
        ReentrantPayee payee = new ReentrantPayee();
        _setTreasury(address(payee));
        _sale(NATIVE, PRICE);
        uint256 fee = _fee(PRICE);

        payee.withdrawFrom(market, NATIVE);

        vm.assertTrue(payee.reentered(), "payee tried to re-enter");
        vm.assertEq(payee.reentryError(), abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector));
        vm.assertEq(address(payee).balance, fee, "paid exactly once");
        _assertSolvent(NATIVE);
    }

    // ================================================================ treasury and allow-list

    function test_SetTreasury_MovesFutureFeesOnly() public {
        _sale(NATIVE, PRICE);
        _setTreasury(carol);
        _sale(NATIVE, 2 * PRICE);

        vm.assertEq(_owed(treasury, NATIVE), _fee(PRICE), "old treasury keeps earned fee");
        vm.assertEq(_owed(carol, NATIVE), _fee(2 * PRICE), "new treasury gets later fee");

        uint256 before = treasury.balance;
        _withdraw(treasury, NATIVE);
        vm.assertEq(treasury.balance - before, _fee(PRICE), "old treasury can still withdraw");
    }

    function test_SetTreasury_FeeChargedNamesNewTreasury() public {
        _setTreasury(carol);
        uint256 tokenId = _mint(creator);
        _list(creator, tokenId, NATIVE, PRICE);
        _expectMarketEmit();
        emit PaymentVault.FeeCharged(NATIVE, carol, _fee(PRICE));
        _buy(bob, tokenId, NATIVE, PRICE);
    }

    function test_DisallowedAsset_PendingLicenceStillSettlesAndWithdraws() public {
        uint256 price = 12e18;
        (, uint256 delivered) = _pendingLicense(address(token), price);
        (, uint256 refunded) = _pendingLicense(address(token), price);
        vm.prank(admin);
        market.setAssetAllowed(address(token), false);

        _deliver(creator, delivered, _key(delivered));
        vm.warp(market.getLicense(refunded).deliveryDeadline + 1);
        market.refundLicense(refunded);
        _withdraw(creator, address(token));
        _withdraw(alice, address(token));
        _withdraw(treasury, address(token));

        vm.assertEq(token.balanceOf(address(market)), 0, "all paid out");
        vm.assertEq(market.totalEscrowed(address(token)), 0);
        vm.assertEq(market.totalOwed(address(token)), 0);
    }

    // ================================================================ pause: blocks

    function test_RevertWhen_PausedMintListBuySetTermsBuyLicense() public {
        uint256 tokenId = _mint(creator);
        _list(creator, tokenId, NATIVE, PRICE);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
        _pause();

        _expectPaused();
        _mint(alice);
        _expectPaused();
        _list(creator, tokenId, NATIVE, 2 * PRICE);
        _expectPaused();
        _buy(bob, tokenId, NATIVE, PRICE);
        _expectPaused();
        _offerLicense(creator, tokenId, NATIVE, 0);
        _expectPaused();
        _buyLicense(bob, tokenId, NATIVE, LICENSE_PRICE);
    }

    // ================================================================ pause: does not block

    function test_Paused_DeliverKeyStillWorks() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        _pause();
        _deliver(creator, licenseId, _key(licenseId));
        _assertLicenseState(licenseId, PromptMarketplace.LicenseState.Delivered);
        vm.assertEq(_owed(creator, NATIVE), LICENSE_PRICE - _fee(LICENSE_PRICE));
    }

    function test_Paused_RefundLicenseStillWorks() public {
        (, uint256 licenseId) = _refundable();
        _pause();
        market.refundLicense(licenseId);
        _assertLicenseState(licenseId, PromptMarketplace.LicenseState.Refunded);
        vm.assertEq(_owed(alice, NATIVE), LICENSE_PRICE);
    }

    function test_Paused_CancelListingStillWorks() public {
        uint256 tokenId = _mint(creator);
        _list(creator, tokenId, NATIVE, PRICE);
        _pause();
        vm.prank(creator);
        market.cancelListing(tokenId);
        _assertListingCleared(tokenId);
    }

    function test_Paused_RateStillWorks() public {
        (uint256 tokenId, uint256 licenseId) = _deliveredLicense();
        _pause();
        _expectMarketEmit();
        emit PromptMarketplace.PromptRated(tokenId, licenseId, alice, 4, "");
        vm.prank(alice);
        market.rate(licenseId, 4, "");
        vm.assertTrue(market.getLicense(licenseId).rated);
    }

    function test_Paused_WithdrawStillWorks() public {
        _sale(NATIVE, PRICE);
        _pause();
        uint256 before = creator.balance;
        _withdraw(creator, NATIVE);
        vm.assertEq(creator.balance - before, PRICE - _fee(PRICE));
    }

    // ================================================================ fuzz: exact splits and solvency

    function testFuzz_SaleSplitExact(uint256 price, uint96 royaltyBps) public {
        _checkSaleSplit(price, royaltyBps, NATIVE);
    }

    function testFuzz_SaleSplitExactToken(uint256 price, uint96 royaltyBps) public {
        _checkSaleSplit(price, royaltyBps, address(token));
    }

    function _checkSaleSplit(uint256 price, uint96 royaltyBps, address asset) internal {
        price = bound(price, 1, asset == NATIVE ? ETH_FUNDS : TOKEN_FUNDS);
        royaltyBps = uint96(bound(royaltyBps, 0, 2_500));
        uint256 tokenId = _mint(creator, royaltyBps);
        _transfer(creator, alice, tokenId);
        _list(alice, tokenId, asset, price);

        uint256 fee = _fee(price);
        uint256 royalty = price * royaltyBps / 10_000;
        _expectMarketEmit();
        emit PromptMarketplace.PromptSold(tokenId, alice, bob, asset, price, price - fee - royalty, royalty, creator, fee);
        _buy(bob, tokenId, asset, price);

        uint256 sellerProceeds = _owed(alice, asset);
        vm.assertEq(_owed(treasury, asset), fee, "fee == ceil(price * 3%)");
        vm.assertEq(_owed(creator, asset), royalty, "royalty");
        vm.assertEq(sellerProceeds + royalty + fee, price, "split sums to price");
        vm.assertEq(market.ownerOf(tokenId), bob);
        _assertSolvent(asset);
        _drainAndCheckEmpty(asset);
    }

    function testFuzz_LicenseSplitExact(uint256 price, bool inToken) public {
        address asset = inToken ? address(token) : NATIVE;
        price = bound(price, 1, inToken ? TOKEN_FUNDS : ETH_FUNDS);
        (, uint256 licenseId) = _pendingLicense(asset, price);
        vm.assertEq(market.totalEscrowed(asset), price, "escrowed");
        _assertSolvent(asset);

        uint256 fee = _fee(price);
        bytes memory key = _key(licenseId);
        _expectMarketEmit();
        emit PromptMarketplace.KeyDelivered(licenseId, 1, alice, creator, key, price - fee, fee);
        _deliver(creator, licenseId, key);

        vm.assertEq(_owed(treasury, asset), fee, "fee == ceil(price * 3%)");
        vm.assertEq(_owed(creator, asset) + fee, price, "seller + fee == price");
        vm.assertEq(market.totalEscrowed(asset), 0, "escrow released");
        _assertSolvent(asset);
        _drainAndCheckEmpty(asset);
    }

    function testFuzz_RefundIsFull(uint256 price, uint256 lateBy) public {
        price = bound(price, 1, ETH_FUNDS);
        lateBy = bound(lateBy, 1, 3_650 days);
        (, uint256 licenseId) = _pendingLicense(NATIVE, price);
        vm.warp(market.getLicense(licenseId).deliveryDeadline + lateBy);

        vm.prank(stranger);
        market.refundLicense(licenseId);

        vm.assertEq(_owed(alice, NATIVE), price, "full refund");
        vm.assertEq(_owed(treasury, NATIVE), 0, "no fee");
        _assertSolvent(NATIVE);
        _drainAndCheckEmpty(NATIVE);
    }

    /// @dev Everyone withdraws what they are owed; afterwards nothing is left in or owed by the
    /// vault for `asset` (sums exactly, no dust).
    function _drainAndCheckEmpty(address asset) internal {
        address[4] memory payees = [creator, alice, treasury, bob];
        for (uint256 i; i < payees.length; ++i) {
            if (_owed(payees[i], asset) != 0) _withdraw(payees[i], asset);
        }
        vm.assertEq(market.totalOwed(asset), 0, "nothing owed");
        vm.assertEq(_balance(asset, address(market)), 0, "vault empty");
    }
}
