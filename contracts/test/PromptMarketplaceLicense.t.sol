// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PromptMarketplaceBase} from "./PromptMarketplaceBase.t.sol";
import {PromptMarketplace} from "../src/PromptMarketplace.sol";
import {PaymentVault} from "../src/PaymentVault.sol";
import {TestToken} from "../src/mocks/TestToken.sol";
import {Vm} from "./utils/TestBase.sol";

/// @notice Licence terms, escrowed licence purchases, key delivery, refunds and ratings.
contract PromptMarketplaceLicenseTest is PromptMarketplaceBase {

    PromptMarketplace.LicenseState internal constant PENDING = PromptMarketplace.LicenseState.Pending;
    PromptMarketplace.LicenseState internal constant DELIVERED = PromptMarketplace.LicenseState.Delivered;
    PromptMarketplace.LicenseState internal constant REFUNDED = PromptMarketplace.LicenseState.Refunded;

    function _expectWrongState(uint256 licenseId, PromptMarketplace.LicenseState state) internal {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.WrongLicenseState.selector, licenseId, state));
    }

    function _expectLicenseNotFound(uint256 licenseId) internal {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.LicenseNotFound.selector, licenseId));
    }

    function _rate(address who, uint256 licenseId, uint8 score) internal {
        vm.prank(who);
        market.rate(licenseId, score, "bafyreview");
    }

    function _deadline(uint256 licenseId) internal view returns (uint64) {
        return market.getLicense(licenseId).deliveryDeadline;
    }

    // ================================================================ setLicenseTerms

    function test_SetLicenseTerms_StoresAndEmits() public {
        uint256 tokenId = _mint(creator);

        _expectMarketEmit();
        emit PromptMarketplace.LicenseTermsSet(tokenId, address(token), 50e18);
        _offerLicense(creator, tokenId, address(token), 50e18);

        PromptMarketplace.LicenseTerms memory t = market.getLicenseTerms(tokenId);
        vm.assertEq(t.asset, address(token));
        vm.assertEq(t.price, 50e18);
    }

    function test_SetLicenseTerms_ZeroPriceStopsOffering() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);

        // A zero price skips the allow-list check, so any asset may accompany withdrawing the offer.
        address unlisted = makeAddr("unlisted");
        _expectMarketEmit();
        emit PromptMarketplace.LicenseTermsSet(tokenId, unlisted, 0);
        _offerLicense(creator, tokenId, unlisted, 0);
        vm.assertEq(market.getLicenseTerms(tokenId).price, 0);

        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.LicenseNotOffered.selector, tokenId));
        _buyLicense(alice, tokenId, NATIVE, 0);
    }

    function test_RevertWhen_SetLicenseTermsUnknownToken() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.PromptNotFound.selector, uint256(5)));
        _offerLicense(creator, 5, NATIVE, LICENSE_PRICE);
    }

    function test_RevertWhen_SetLicenseTermsCallerNotOwner() public {
        uint256 tokenId = _mint(creator);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotTokenOwner.selector, tokenId, alice));
        _offerLicense(alice, tokenId, NATIVE, LICENSE_PRICE);
    }

    function test_RevertWhen_SetLicenseTermsAssetNotAllowed() public {
        uint256 tokenId = _mint(creator);
        TestToken other = new TestToken();
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.AssetNotAllowed.selector, address(other)));
        _offerLicense(creator, tokenId, address(other), LICENSE_PRICE);
    }

    function test_RevertWhen_SetLicenseTermsPaused() public {
        uint256 tokenId = _mint(creator);
        _pause();
        _expectPaused();
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
    }

    // ================================================================ buyLicense

    function test_BuyLicense_EscrowsNativePayment() public {
        uint256 aliceBefore = alice.balance;
        (uint256 tokenId, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);

        vm.assertEq(licenseId, 1, "first licence id");
        vm.assertEq(market.licenseCount(), 1, "licenseCount");
        PromptMarketplace.License memory lic = market.getLicense(licenseId);
        vm.assertEq(lic.tokenId, tokenId, "tokenId");
        vm.assertEq(lic.buyer, alice, "buyer");
        vm.assertEq(lic.seller, creator, "seller");
        vm.assertEq(lic.asset, NATIVE, "asset");
        vm.assertEq(lic.price, LICENSE_PRICE, "price");
        vm.assertEq(uint256(lic.deliveryDeadline), START + WINDOW, "deadline");
        vm.assertEq(uint256(lic.state), uint256(PENDING), "state");
        vm.assertFalse(lic.rated, "rated");

        vm.assertEq(alice.balance, aliceBefore - LICENSE_PRICE, "buyer paid");
        vm.assertEq(address(market).balance, LICENSE_PRICE, "vault holds payment");
        vm.assertEq(market.totalEscrowed(NATIVE), LICENSE_PRICE, "escrowed");
        vm.assertEq(market.totalOwed(NATIVE), 0, "nothing owed yet");
        vm.assertEq(_owed(creator, NATIVE), 0, "seller not paid yet");
        _assertSolvent(NATIVE);
    }

    function test_BuyLicense_EscrowsTokenPayment() public {
        uint256 price = 25e18;
        uint256 aliceBefore = token.balanceOf(alice);
        (, uint256 licenseId) = _pendingLicense(address(token), price);

        vm.assertEq(market.getLicense(licenseId).asset, address(token));
        vm.assertEq(token.balanceOf(alice), aliceBefore - price);
        vm.assertEq(token.balanceOf(address(market)), price);
        vm.assertEq(market.totalEscrowed(address(token)), price);
        _assertSolvent(address(token));
    }

    function test_BuyLicense_EmitsLicensePurchased() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
        vm.warp(START + 1234);

        _expectMarketEmit();
        emit PromptMarketplace.LicensePurchased(
            1, tokenId, alice, creator, NATIVE, LICENSE_PRICE, uint64(START + 1234 + WINDOW)
        );
        _buyLicense(alice, tokenId, NATIVE, LICENSE_PRICE);
    }

    function test_BuyLicense_IdsIncrementAndManyBuyersAllowed() public {
        (uint256 tokenId, uint256 first) = _pendingLicense(NATIVE, LICENSE_PRICE);
        uint256 second = _buyLicense(bob, tokenId, NATIVE, LICENSE_PRICE);
        uint256 third = _buyLicense(alice, tokenId, NATIVE, LICENSE_PRICE);

        vm.assertEq(first, 1);
        vm.assertEq(second, 2);
        vm.assertEq(third, 3);
        vm.assertEq(market.getLicense(second).buyer, bob);
        vm.assertEq(market.totalEscrowed(NATIVE), 3 * LICENSE_PRICE);
        _assertSolvent(NATIVE);
    }

    function test_Transfer_ClearsLicenseTermsButKeepsPendingLicenses() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
        uint256 before = _buyLicense(alice, tokenId, NATIVE, LICENSE_PRICE);

        vm.expectEmit(true, true, false, true, address(market));
        emit PromptMarketplace.LicenseTermsSet(tokenId, address(0), 0);
        _transfer(creator, carol, tokenId);
        // Like a listing, the terms do not bind the new owner.
        vm.assertEq(market.getLicenseTerms(tokenId).price, 0, "terms cleared by transfer");
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.LicenseNotOffered.selector, tokenId));
        vm.prank(bob);
        market.buyLicense(tokenId, LICENSE_PRICE);

        // The new owner sets its own terms and becomes the seller of new licences.
        _offerLicense(carol, tokenId, NATIVE, LICENSE_PRICE);
        uint256 afterTransfer = _buyLicense(bob, tokenId, NATIVE, LICENSE_PRICE);
        vm.assertEq(market.getLicense(before).seller, creator, "seller fixed at purchase");
        vm.assertEq(market.getLicense(afterTransfer).seller, carol, "seller is current owner");

        // Each licence is delivered (and paid) to its own seller only.
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotLicenseSeller.selector, before, carol));
        _deliver(carol, before, _key(1));
        _deliver(creator, before, _key(1));
        _deliver(carol, afterTransfer, _key(2));
        uint256 proceeds = LICENSE_PRICE - _fee(LICENSE_PRICE);
        vm.assertEq(_owed(creator, NATIVE), proceeds);
        vm.assertEq(_owed(carol, NATIVE), proceeds);
    }

    function test_BuyLicense_DeadlineUsesCurrentWindow() public {
        (uint256 tokenId, uint256 first) = _pendingLicense(NATIVE, LICENSE_PRICE);
        vm.prank(admin);
        market.setDeliveryWindow(1 hours);
        vm.warp(START + 10);
        uint256 second = _buyLicense(bob, tokenId, NATIVE, LICENSE_PRICE);

        vm.assertEq(uint256(_deadline(first)), START + WINDOW, "old licence keeps its deadline");
        vm.assertEq(uint256(_deadline(second)), START + 10 + 1 hours, "new window applies");
    }

    function test_RevertWhen_BuyLicenseUnknownToken() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.PromptNotFound.selector, uint256(3)));
        _buyLicense(alice, 3, NATIVE, LICENSE_PRICE);
    }

    function test_RevertWhen_BuyLicenseNotOffered() public {
        uint256 tokenId = _mint(creator);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.LicenseNotOffered.selector, tokenId));
        _buyLicense(alice, tokenId, NATIVE, 0);
    }

    function test_RevertWhen_BuyLicensePriceMismatch() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
        vm.expectRevert(
            abi.encodeWithSelector(PromptMarketplace.PriceMismatch.selector, LICENSE_PRICE, LICENSE_PRICE + 1)
        );
        _buyLicense(alice, tokenId, NATIVE, LICENSE_PRICE + 1);
    }

    function test_RevertWhen_BuyLicenseSellerCannotBuy() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.SellerCannotBuy.selector, creator));
        _buyLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
    }

    function test_RevertWhen_BuyLicenseWrongNativeValue() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
        vm.expectRevert(
            abi.encodeWithSelector(PaymentVault.WrongPaymentValue.selector, LICENSE_PRICE, LICENSE_PRICE * 2)
        );
        vm.prank(alice);
        market.buyLicense{value: LICENSE_PRICE * 2}(tokenId, LICENSE_PRICE);
    }

    function test_RevertWhen_BuyLicenseInTokenWithEth() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, address(token), LICENSE_PRICE);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.WrongPaymentValue.selector, 0, LICENSE_PRICE));
        vm.prank(alice);
        market.buyLicense{value: LICENSE_PRICE}(tokenId, LICENSE_PRICE);
    }

    function test_RevertWhen_BuyLicenseAssetDisallowedAfterTerms() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, address(token), LICENSE_PRICE);
        vm.prank(admin);
        market.setAssetAllowed(address(token), false);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.AssetNotAllowed.selector, address(token)));
        _buyLicense(alice, tokenId, address(token), LICENSE_PRICE);
    }

    function test_RevertWhen_BuyLicensePaused() public {
        uint256 tokenId = _mint(creator);
        _offerLicense(creator, tokenId, NATIVE, LICENSE_PRICE);
        _pause();
        _expectPaused();
        _buyLicense(alice, tokenId, NATIVE, LICENSE_PRICE);
    }

    // ================================================================ deliverKey

    function test_DeliverKey_CreditsSellerPriceMinusFee() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        bytes memory key = _key(licenseId);

        _deliver(creator, licenseId, key);

        uint256 fee = _fee(LICENSE_PRICE);
        vm.assertEq(_owed(creator, NATIVE), LICENSE_PRICE - fee, "seller proceeds");
        vm.assertEq(_owed(treasury, NATIVE), fee, "fee");
        vm.assertEq(_owed(alice, NATIVE), 0, "buyer gets nothing back");
        vm.assertEq(market.totalEscrowed(NATIVE), 0, "escrow released");
        vm.assertEq(market.totalOwed(NATIVE), LICENSE_PRICE, "all owed");
        vm.assertTrue(market.deliveryUsed(keccak256(abi.encode(creator, key))), "delivery recorded");
        _assertLicenseState(licenseId, DELIVERED);
        _assertSolvent(NATIVE);
    }

    function test_DeliverKey_InToken() public {
        uint256 price = 3e18;
        (, uint256 licenseId) = _pendingLicense(address(token), price);
        _deliver(creator, licenseId, _key(licenseId));
        vm.assertEq(_owed(creator, address(token)), price - _fee(price));
        vm.assertEq(_owed(treasury, address(token)), _fee(price));
        vm.assertEq(market.totalEscrowed(address(token)), 0);
        _assertSolvent(address(token));
    }

    function test_DeliverKey_EmitsKeyDeliveredWithKeyBytes() public {
        (uint256 tokenId, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        bytes memory key = _key(licenseId);
        uint256 fee = _fee(LICENSE_PRICE);

        _expectMarketEmit();
        emit PaymentVault.FeeCharged(NATIVE, treasury, fee);
        _expectMarketEmit();
        emit PaymentVault.Credited(creator, NATIVE, LICENSE_PRICE - fee);
        _expectMarketEmit();
        emit PromptMarketplace.KeyDelivered(licenseId, tokenId, alice, creator, key, LICENSE_PRICE - fee, fee);
        vm.recordLogs();
        _deliver(creator, licenseId, key);

        // Decode the event independently: the buyer reads the key from the log data.
        Vm.Log[] memory logs = vm.getRecordedLogs();
        Vm.Log memory last = logs[logs.length - 1];
        vm.assertEq(last.topics[0], PromptMarketplace.KeyDelivered.selector);
        (, bytes memory emitted,,) = abi.decode(last.data, (address, bytes, uint256, uint256));
        vm.assertEq(emitted, key, "encrypted key bytes");
    }

    function test_DeliverKey_AtDeadlineSucceeds() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        vm.warp(_deadline(licenseId));
        _deliver(creator, licenseId, _key(licenseId));
        _assertLicenseState(licenseId, DELIVERED);
    }

    function test_RevertWhen_DeliverKeyReplayed() public {
        (uint256 tokenId, uint256 first) = _pendingLicense(NATIVE, LICENSE_PRICE);
        uint256 second = _buyLicense(bob, tokenId, NATIVE, LICENSE_PRICE);
        bytes memory key = _key(first);
        _deliver(creator, first, key);

        vm.expectRevert(
            abi.encodeWithSelector(PromptMarketplace.DeliveryReplayed.selector, keccak256(abi.encode(creator, key)))
        );
        _deliver(creator, second, key);

        _assertLicenseState(second, PENDING);
        _deliver(creator, second, _key(second));
        _assertLicenseState(second, DELIVERED);
    }

    /// @dev The replay guard is keyed by seller: another seller who copies a pending delivery from
    /// the mempool and posts it first for its own licence cannot block the real one.
    function test_DeliverKey_FrontRunByOtherSellerDoesNotBlock() public {
        (, uint256 victim) = _pendingLicense(NATIVE, LICENSE_PRICE);
        uint256 otherToken = _mint(carol);
        _offerLicense(carol, otherToken, NATIVE, 1);
        uint256 own = _buyLicense(bob, otherToken, NATIVE, 1);
        bytes memory key = _key(victim);

        _deliver(carol, own, key); // copies the bytes from creator's pending transaction
        _deliver(creator, victim, key);
        _assertLicenseState(victim, DELIVERED);
        vm.assertTrue(market.deliveryUsed(keccak256(abi.encode(carol, key))));
        vm.assertTrue(market.deliveryUsed(keccak256(abi.encode(creator, key))));
    }

    function test_RevertWhen_DeliverKeyUnknownLicense() public {
        _expectLicenseNotFound(1);
        _deliver(creator, 1, _key(1));
    }

    function test_RevertWhen_DeliverKeyCallerNotSeller() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotLicenseSeller.selector, licenseId, alice));
        _deliver(alice, licenseId, _key(licenseId));
    }

    function test_RevertWhen_DeliverKeyAfterDeadline() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        uint64 deadline = _deadline(licenseId);
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(PromptMarketplace.DeliveryDeadlinePassed.selector, licenseId, deadline)
        );
        _deliver(creator, licenseId, _key(licenseId));
    }

    function test_RevertWhen_DeliverKeyEmpty() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        _expectRevert(PromptMarketplace.EmptyKey.selector);
        _deliver(creator, licenseId, "");
    }

    function test_RevertWhen_DeliverKeyAlreadyDelivered() public {
        (, uint256 licenseId) = _deliveredLicense();
        _expectWrongState(licenseId, DELIVERED);
        _deliver(creator, licenseId, _key(99));
    }

    function test_RevertWhen_DeliverKeyAfterRefund() public {
        (, uint256 licenseId) = _refundable();
        market.refundLicense(licenseId);
        _expectWrongState(licenseId, REFUNDED);
        _deliver(creator, licenseId, _key(licenseId));
    }

    // ================================================================ refundLicense

    function test_RefundLicense_AfterDeadlineFullRefundNoFee() public {
        (, uint256 licenseId) = _refundable();

        vm.prank(stranger); // anyone may trigger it
        market.refundLicense(licenseId);

        vm.assertEq(_owed(alice, NATIVE), LICENSE_PRICE, "full refund");
        vm.assertEq(_owed(treasury, NATIVE), 0, "no fee");
        vm.assertEq(_owed(creator, NATIVE), 0, "seller unpaid");
        vm.assertEq(_owed(stranger, NATIVE), 0, "caller unpaid");
        vm.assertEq(market.totalEscrowed(NATIVE), 0);
        _assertLicenseState(licenseId, REFUNDED);
        _assertSolvent(NATIVE);

        uint256 before = alice.balance;
        _withdraw(alice, NATIVE);
        vm.assertEq(alice.balance, before + LICENSE_PRICE, "refund withdrawn");
    }

    function test_RefundLicense_EmitsCreditAndLicenseRefunded() public {
        (uint256 tokenId, uint256 licenseId) = _refundable();

        _expectMarketEmit();
        emit PaymentVault.Credited(alice, NATIVE, LICENSE_PRICE);
        _expectMarketEmit();
        emit PromptMarketplace.LicenseRefunded(licenseId, tokenId, alice, LICENSE_PRICE);
        vm.recordLogs();
        market.refundLicense(licenseId);

        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(logs.length, 2, "only Credited and LicenseRefunded: no FeeCharged");
        vm.assertEq(logs[0].emitter, address(market));
    }

    function test_RefundLicense_InToken() public {
        (, uint256 licenseId) = _pendingLicense(address(token), 9e18);
        vm.warp(_deadline(licenseId) + 1);
        market.refundLicense(licenseId);
        vm.assertEq(_owed(alice, address(token)), 9e18);
        _assertSolvent(address(token));
    }

    function test_RevertWhen_RefundLicenseBeforeDeadline() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        uint64 deadline = _deadline(licenseId);
        vm.warp(deadline); // the deadline itself still belongs to the seller
        vm.expectRevert(
            abi.encodeWithSelector(PromptMarketplace.DeliveryDeadlineNotReached.selector, licenseId, deadline)
        );
        market.refundLicense(licenseId);
    }

    function test_RevertWhen_RefundLicenseUnknown() public {
        _expectLicenseNotFound(4);
        market.refundLicense(4);
    }

    function test_RevertWhen_RefundLicenseDelivered() public {
        (, uint256 licenseId) = _deliveredLicense();
        vm.warp(_deadline(licenseId) + 1);
        _expectWrongState(licenseId, DELIVERED);
        market.refundLicense(licenseId);
    }

    function test_RevertWhen_RefundLicenseTwice() public {
        (, uint256 licenseId) = _refundable();
        market.refundLicense(licenseId);
        _expectWrongState(licenseId, REFUNDED);
        market.refundLicense(licenseId);
        vm.assertEq(_owed(alice, NATIVE), LICENSE_PRICE, "refunded once");
    }

    // ================================================================ rate

    function test_Rate_EmitsAndMarksRated() public {
        (uint256 tokenId, uint256 licenseId) = _deliveredLicense();

        _expectMarketEmit();
        emit PromptMarketplace.PromptRated(tokenId, licenseId, alice, 5, "bafyreview");
        _rate(alice, licenseId, 5);

        vm.assertTrue(market.getLicense(licenseId).rated);
    }

    function test_Rate_LowestScoreAndOncePerLicence() public {
        (uint256 tokenId, uint256 first) = _deliveredLicense();
        uint256 second = _buyLicense(alice, tokenId, NATIVE, LICENSE_PRICE);
        _deliver(creator, second, _key(second));

        _rate(alice, first, 1);
        _expectMarketEmit();
        emit PromptMarketplace.PromptRated(tokenId, second, alice, 3, "bafyreview");
        _rate(alice, second, 3); // a second licence gives a second rating
    }

    function test_RevertWhen_RateTwice() public {
        (, uint256 licenseId) = _deliveredLicense();
        _rate(alice, licenseId, 4);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.AlreadyRated.selector, licenseId));
        _rate(alice, licenseId, 4);
    }

    function test_RevertWhen_RateScoreZero() public {
        (, uint256 licenseId) = _deliveredLicense();
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidScore.selector, uint8(0)));
        _rate(alice, licenseId, 0);
    }

    function test_RevertWhen_RateScoreSix() public {
        (, uint256 licenseId) = _deliveredLicense();
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidScore.selector, uint8(6)));
        _rate(alice, licenseId, 6);
    }

    function testFuzz_Rate_OnlyScoresOneToFive(uint8 score) public {
        (, uint256 licenseId) = _deliveredLicense();
        bool valid = score >= 1 && score <= 5;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidScore.selector, score));
        _rate(alice, licenseId, score);
        vm.assertEq(market.getLicense(licenseId).rated, valid);
    }

    function test_RevertWhen_RateCallerNotBuyer() public {
        (, uint256 licenseId) = _deliveredLicense();
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotLicenseBuyer.selector, licenseId, creator));
        _rate(creator, licenseId, 5);
    }

    function test_RevertWhen_RatePending() public {
        (, uint256 licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        _expectWrongState(licenseId, PENDING);
        _rate(alice, licenseId, 5);
    }

    function test_RevertWhen_RateRefunded() public {
        (, uint256 licenseId) = _refundable();
        market.refundLicense(licenseId);
        _expectWrongState(licenseId, REFUNDED);
        _rate(alice, licenseId, 5);
    }

    function test_RevertWhen_RateUnknownLicense() public {
        _expectLicenseNotFound(8);
        _rate(alice, 8, 5);
    }
}
