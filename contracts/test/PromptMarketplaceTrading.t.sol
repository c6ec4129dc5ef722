// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PromptMarketplaceBase, FeeOnTransferToken} from "./PromptMarketplaceBase.t.sol";
import {PromptMarketplace} from "../src/PromptMarketplace.sol";
import {PaymentVault} from "../src/PaymentVault.sol";
import {TestToken} from "../src/mocks/TestToken.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Vm} from "./utils/TestBase.sol";

/// @notice Listing, cancelling and buying prompt NFTs, and listings cleared by transfers.
contract PromptMarketplaceTradingTest is PromptMarketplaceBase {
    uint256 internal tokenId;

    function setUp() public override {
        super.setUp();
        tokenId = _mint(creator);
    }

    /// @dev Moves the token to alice and lists it there, so seller (alice) and royalty receiver
    /// (creator) differ.
    function _resaleListing(address asset, uint256 price) internal {
        _transfer(creator, alice, tokenId);
        _list(alice, tokenId, asset, price);
    }

    function _assertListing(address seller, address asset, uint256 price) internal view {
        PromptMarketplace.Listing memory l = market.getListing(tokenId);
        vm.assertEq(l.seller, seller, "listing seller");
        vm.assertEq(l.asset, asset, "listing asset");
        vm.assertEq(l.price, price, "listing price");
    }

    // ================================================================ list

    function test_List_StoresListingAndEmits() public {
        _expectMarketEmit();
        emit PromptMarketplace.PromptListed(tokenId, creator, NATIVE, PRICE);
        _list(creator, tokenId, NATIVE, PRICE);
        _assertListing(creator, NATIVE, PRICE);
        // Listing does not escrow the NFT.
        vm.assertEq(market.ownerOf(tokenId), creator);
    }

    function test_List_InAllowedToken() public {
        _expectMarketEmit();
        emit PromptMarketplace.PromptListed(tokenId, creator, address(token), 500e18);
        _list(creator, tokenId, address(token), 500e18);
        _assertListing(creator, address(token), 500e18);
    }

    function test_List_NewListingReplacesOld() public {
        _list(creator, tokenId, NATIVE, PRICE);
        _list(creator, tokenId, address(token), 7e18);
        _assertListing(creator, address(token), 7e18);

        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.PriceMismatch.selector, 7e18, PRICE));
        vm.prank(bob);
        market.buy{value: PRICE}(tokenId, PRICE);
    }

    function test_RevertWhen_ListUnknownToken() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.PromptNotFound.selector, uint256(99)));
        _list(creator, 99, NATIVE, PRICE);
    }

    function test_RevertWhen_ListCallerNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotTokenOwner.selector, tokenId, stranger));
        _list(stranger, tokenId, NATIVE, PRICE);
    }

    function test_RevertWhen_ListCallerIsOnlyApprovedOperator() public {
        vm.prank(creator);
        market.setApprovalForAll(carol, true);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotTokenOwner.selector, tokenId, carol));
        _list(carol, tokenId, NATIVE, PRICE);
    }

    function test_RevertWhen_ListAssetNotAllowed() public {
        TestToken other = new TestToken();
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.AssetNotAllowed.selector, address(other)));
        _list(creator, tokenId, address(other), PRICE);
    }

    function test_RevertWhen_ListZeroPrice() public {
        _expectRevert(PaymentVault.ZeroAmount.selector);
        _list(creator, tokenId, NATIVE, 0);
    }

    function test_RevertWhen_ListPaused() public {
        _pause();
        _expectPaused();
        _list(creator, tokenId, NATIVE, PRICE);
    }

    // ================================================================ cancelListing

    function test_CancelListing_ClearsAndEmits() public {
        _list(creator, tokenId, NATIVE, PRICE);

        _expectMarketEmit();
        emit PromptMarketplace.ListingCancelled(tokenId, creator);
        vm.prank(creator);
        market.cancelListing(tokenId);

        _assertListingCleared(tokenId);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotListed.selector, tokenId));
        _buy(bob, tokenId, NATIVE, PRICE);
    }

    function test_RevertWhen_CancelListingNotListed() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotListed.selector, tokenId));
        vm.prank(creator);
        market.cancelListing(tokenId);
    }

    function test_RevertWhen_CancelListingCallerNotSeller() public {
        _list(creator, tokenId, NATIVE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotTokenOwner.selector, tokenId, stranger));
        vm.prank(stranger);
        market.cancelListing(tokenId);
        _assertListing(creator, NATIVE, PRICE);
    }

    // ================================================================ buy

    function test_Buy_PrimarySaleCreditsCreatorAndTreasury() public {
        _list(creator, tokenId, NATIVE, PRICE);
        uint256 bobBefore = bob.balance;

        _buy(bob, tokenId, NATIVE, PRICE);

        uint256 fee = _fee(PRICE);
        // The creator is both seller and royalty receiver: price - fee in total.
        vm.assertEq(_owed(creator, NATIVE), PRICE - fee, "creator owed");
        vm.assertEq(_owed(treasury, NATIVE), fee, "treasury owed");
        vm.assertEq(bob.balance, bobBefore - PRICE, "buyer paid");
        vm.assertEq(address(market).balance, PRICE, "vault holds price");
        vm.assertEq(market.totalEscrowed(NATIVE), 0, "nothing escrowed");
        vm.assertEq(market.totalOwed(NATIVE), PRICE, "all owed");
        vm.assertEq(market.ownerOf(tokenId), bob, "new owner");
        _assertSolvent(NATIVE);
    }

    function test_Buy_ResaleSplitsSellerRoyaltyFee() public {
        _resaleListing(NATIVE, PRICE);

        _buy(bob, tokenId, NATIVE, PRICE);

        uint256 fee = _fee(PRICE); // 0.03 ether
        uint256 royalty = PRICE * ROYALTY_BPS / 10_000; // 0.1 ether
        uint256 proceeds = _owed(alice, NATIVE);
        vm.assertEq(_owed(treasury, NATIVE), fee, "fee");
        vm.assertEq(_owed(creator, NATIVE), royalty, "royalty to creator");
        vm.assertEq(proceeds, PRICE - fee - royalty, "seller proceeds");
        vm.assertEq(proceeds + royalty + fee, PRICE, "split sums to price");
        vm.assertEq(proceeds, 0.87 ether, "concrete proceeds");
        vm.assertEq(market.ownerOf(tokenId), bob);
        _assertSolvent(NATIVE);
    }

    function test_Buy_RoyaltyStillPaidAfterSecondResale() public {
        _resaleListing(NATIVE, PRICE);
        _buy(bob, tokenId, NATIVE, PRICE);
        _list(bob, tokenId, NATIVE, 2 * PRICE);
        _buy(carol, tokenId, NATIVE, 2 * PRICE);

        uint256 royalty1 = PRICE / 10;
        uint256 royalty2 = 2 * PRICE / 10;
        vm.assertEq(_owed(creator, NATIVE), royalty1 + royalty2, "creator royalties");
        vm.assertEq(_owed(bob, NATIVE), 2 * PRICE - _fee(2 * PRICE) - royalty2, "bob proceeds");
        vm.assertEq(_owed(treasury, NATIVE), _fee(PRICE) + _fee(2 * PRICE), "fees");
        vm.assertEq(market.ownerOf(tokenId), carol);
        _assertSolvent(NATIVE);
    }

    function test_Buy_EmitsCreditsFeeTransferAndPromptSold() public {
        _resaleListing(NATIVE, PRICE);
        uint256 fee = _fee(PRICE);
        uint256 royalty = PRICE / 10;
        uint256 proceeds = PRICE - fee - royalty;

        _expectMarketEmit();
        emit PaymentVault.Credited(treasury, NATIVE, fee);
        _expectMarketEmit();
        emit PaymentVault.FeeCharged(NATIVE, treasury, fee);
        _expectMarketEmit();
        emit PaymentVault.Credited(creator, NATIVE, royalty);
        _expectMarketEmit();
        emit PaymentVault.Credited(alice, NATIVE, proceeds);
        _expectMarketEmit();
        emit IERC721.Transfer(alice, bob, tokenId);
        _expectMarketEmit();
        emit PromptMarketplace.PromptSold(tokenId, alice, bob, NATIVE, PRICE, proceeds, royalty, creator, fee);
        _buy(bob, tokenId, NATIVE, PRICE);
    }

    function test_Buy_DoesNotEmitListingCancelledForOwnTransfer() public {
        _resaleListing(NATIVE, PRICE);
        vm.recordLogs();
        _buy(bob, tokenId, NATIVE, PRICE);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            vm.assertTrue(logs[i].topics[0] != PromptMarketplace.ListingCancelled.selector, "ListingCancelled");
        }
    }

    function test_Buy_WithTokenMovesTokensAndSplits() public {
        uint256 price = 1_000e18;
        _resaleListing(address(token), price);
        uint256 bobBefore = token.balanceOf(bob);

        _buy(bob, tokenId, address(token), price);

        uint256 fee = _fee(price);
        uint256 royalty = price / 10;
        vm.assertEq(token.balanceOf(bob), bobBefore - price, "buyer debited");
        vm.assertEq(token.balanceOf(address(market)), price, "vault credited");
        vm.assertEq(_owed(treasury, address(token)), fee, "fee");
        vm.assertEq(_owed(creator, address(token)), royalty, "royalty");
        vm.assertEq(_owed(alice, address(token)), price - fee - royalty, "proceeds");
        vm.assertEq(_owed(alice, NATIVE), 0, "no ETH credited");
        vm.assertEq(market.ownerOf(tokenId), bob);
        _assertSolvent(address(token));
        _assertSolvent(NATIVE);
    }

    function test_Buy_ZeroRoyaltyCreditsNoRoyalty() public {
        uint256 plain = _mint(carol, 0);
        _transfer(carol, alice, plain);
        _list(alice, plain, NATIVE, PRICE);

        _buy(bob, plain, NATIVE, PRICE);

        vm.assertEq(_owed(carol, NATIVE), 0, "no royalty");
        vm.assertEq(_owed(alice, NATIVE), PRICE - _fee(PRICE), "seller gets all after fee");
    }

    function test_Buy_ClearsListing() public {
        _list(creator, tokenId, NATIVE, PRICE);
        _buy(bob, tokenId, NATIVE, PRICE);

        _assertListingCleared(tokenId);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotListed.selector, tokenId));
        _buy(carol, tokenId, NATIVE, PRICE);
    }

    function test_Buy_SmallestPriceAllGoesToFee() public {
        _resaleListing(NATIVE, 1);
        _buy(bob, tokenId, NATIVE, 1);
        vm.assertEq(_owed(treasury, NATIVE), 1, "fee rounds up to 1 wei");
        vm.assertEq(_owed(alice, NATIVE), 0);
        vm.assertEq(_owed(creator, NATIVE), 0);
        vm.assertEq(market.ownerOf(tokenId), bob);
        _assertSolvent(NATIVE);
    }

    function test_RevertWhen_BuyNotListed() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotListed.selector, tokenId));
        _buy(bob, tokenId, NATIVE, PRICE);
    }

    function test_RevertWhen_BuyPriceMismatch() public {
        _list(creator, tokenId, NATIVE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.PriceMismatch.selector, PRICE, PRICE - 1));
        _buy(bob, tokenId, NATIVE, PRICE - 1);
    }

    function test_RevertWhen_BuySellerCannotBuy() public {
        _list(creator, tokenId, NATIVE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.SellerCannotBuy.selector, creator));
        _buy(creator, tokenId, NATIVE, PRICE);
    }

    function test_RevertWhen_BuyNativeWrongValue() public {
        _list(creator, tokenId, NATIVE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.WrongPaymentValue.selector, PRICE, PRICE - 1));
        vm.prank(bob);
        market.buy{value: PRICE - 1}(tokenId, PRICE);
    }

    function test_RevertWhen_BuyTokenListingWithEth() public {
        _list(creator, tokenId, address(token), PRICE);
        vm.expectRevert(abi.encodeWithSelector(PaymentVault.WrongPaymentValue.selector, 0, 1));
        vm.prank(bob);
        market.buy{value: 1}(tokenId, PRICE);
    }

    function test_RevertWhen_BuyAssetDisallowedAfterListing() public {
        _list(creator, tokenId, address(token), PRICE);
        vm.prank(admin);
        market.setAssetAllowed(address(token), false);

        vm.expectRevert(abi.encodeWithSelector(PaymentVault.AssetNotAllowed.selector, address(token)));
        _buy(bob, tokenId, address(token), PRICE);
    }

    function test_RevertWhen_BuyTokenWithoutAllowance() public {
        _list(creator, tokenId, address(token), PRICE);
        vm.prank(bob);
        token.approve(address(market), PRICE - 1);

        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(market), PRICE - 1, PRICE
            )
        );
        _buy(bob, tokenId, address(token), PRICE);
    }

    function test_RevertWhen_BuyWithFeeOnTransferToken() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        vm.prank(admin);
        market.setAssetAllowed(address(fot), true);
        fot.mint(bob, PRICE);
        vm.prank(bob);
        fot.approve(address(market), PRICE);
        _list(creator, tokenId, address(fot), PRICE);

        vm.expectRevert(
            abi.encodeWithSelector(PaymentVault.UnsupportedToken.selector, address(fot), PRICE, PRICE - PRICE / 100)
        );
        vm.prank(bob);
        market.buy(tokenId, PRICE);
    }

    function test_RevertWhen_BuyPaused() public {
        _list(creator, tokenId, NATIVE, PRICE);
        _pause();
        _expectPaused();
        _buy(bob, tokenId, NATIVE, PRICE);
    }

    // ================================================================ transfers clear listings

    function test_Transfer_ClearsListingAndEmitsListingCancelled() public {
        _list(creator, tokenId, NATIVE, PRICE);

        _expectMarketEmit();
        emit IERC721.Transfer(creator, alice, tokenId);
        _expectMarketEmit();
        emit PromptMarketplace.ListingCancelled(tokenId, creator);
        _transfer(creator, alice, tokenId);

        _assertListingCleared(tokenId);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotListed.selector, tokenId));
        _buy(bob, tokenId, NATIVE, PRICE);
    }

    function test_Transfer_ByApprovedOperatorClearsListing() public {
        _list(creator, tokenId, NATIVE, PRICE);
        vm.prank(creator);
        market.approve(carol, tokenId);

        _expectMarketEmit();
        emit PromptMarketplace.ListingCancelled(tokenId, creator);
        vm.prank(carol);
        market.safeTransferFrom(creator, carol, tokenId);

        _assertListingCleared(tokenId);
        vm.assertEq(market.ownerOf(tokenId), carol);
    }

    function test_Transfer_ListingNotRestoredWhenTokenReturns() public {
        _list(creator, tokenId, NATIVE, PRICE);
        _transfer(creator, alice, tokenId);
        _transfer(alice, creator, tokenId);

        _assertListingCleared(tokenId);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.NotListed.selector, tokenId));
        _buy(bob, tokenId, NATIVE, PRICE);
    }

    function test_Transfer_UnlistedEmitsNoListingCancelled() public {
        vm.recordLogs();
        _transfer(creator, alice, tokenId);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(logs.length, 1, "only Transfer");
        vm.assertEq(logs[0].topics[0], IERC721.Transfer.selector);
    }
}
