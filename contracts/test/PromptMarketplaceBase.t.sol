// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {PromptMarketplace} from "../src/PromptMarketplace.sol";
import {PaymentVault} from "../src/PaymentVault.sol";
import {TestToken} from "../src/mocks/TestToken.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @dev An ERC-20 that burns 1% of every transfer, to hit PaymentVault.UnsupportedToken.
contract FeeOnTransferToken is ERC20 {
    constructor() ERC20("Fee On Transfer", "FOT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 burnt = value / 100;
            super._update(from, address(0), burnt);
            value -= burnt;
        }
        super._update(from, to, value);
    }
}

/// @dev A payee that refuses ETH (no receive/fallback), to hit PaymentVault.NativeTransferFailed.
contract EthRejecter {
    function withdrawFrom(PaymentVault vault, address asset) external {
        vault.withdraw(asset);
    }
}

/// @dev A payee that re-enters withdraw while being paid and records how the re-entry failed.
contract ReentrantPayee {
    PaymentVault public vault;
    bytes public reentryError;
    bool public reentered;

    function withdrawFrom(PaymentVault vault_, address asset) external {
        vault = vault_;
        vault_.withdraw(asset);
    }

    receive() external payable {
        if (reentered) return;
        reentered = true;
        try vault.withdraw(address(0)) {}
        catch (bytes memory err) {
            reentryError = err;
        }
    }
}

/// @dev Shared fixture: a marketplace with an allow-listed TestToken, named and funded actors, and
/// helpers for each step of the NFT-sale and licence flows.
abstract contract PromptMarketplaceBase is TestBase {
    address internal constant NATIVE = address(0);
    uint64 internal constant WINDOW = 3 days;
    uint64 internal constant MAX_WINDOW = 30 days;
    uint96 internal constant ROYALTY_BPS = 1_000; // 10%
    uint256 internal constant PRICE = 1 ether;
    uint256 internal constant LICENSE_PRICE = 0.2 ether;
    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant TOKEN_FUNDS = 1e36;
    uint256 internal constant ETH_FUNDS = 1_000 ether;
    bytes32 internal constant CONTENT_HASH = keccak256("the plaintext prompt");
    string internal constant CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
    bytes32 internal constant DEFAULT_ADMIN_ROLE = 0x00;

    PromptMarketplace internal market;
    TestToken internal token;

    address internal admin;
    address internal treasury;
    address internal creator;
    address internal alice;
    address internal bob;
    address internal carol;
    address internal stranger;

    function setUp() public virtual {
        admin = makeAddr("admin");
        treasury = makeAddr("treasury");
        creator = makeAddr("creator");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        carol = makeAddr("carol");
        stranger = makeAddr("stranger");

        vm.warp(START);
        market = new PromptMarketplace(admin, treasury, WINDOW);
        token = new TestToken();
        vm.prank(admin);
        market.setAssetAllowed(address(token), true);

        address[4] memory traders = [creator, alice, bob, carol];
        for (uint256 i; i < traders.length; ++i) {
            vm.deal(traders[i], ETH_FUNDS);
            token.mint(traders[i], TOKEN_FUNDS);
            vm.prank(traders[i]);
            token.approve(address(market), type(uint256).max);
        }
    }

    // ------------------------------------------------------------------ flow helpers

    function _mint(address who, uint96 royaltyBps) internal returns (uint256 tokenId) {
        vm.prank(who);
        tokenId = market.mint(CID, CONTENT_HASH, royaltyBps);
    }

    function _mint(address who) internal returns (uint256) {
        return _mint(who, ROYALTY_BPS);
    }

    function _list(address seller, uint256 tokenId, address asset, uint256 price) internal {
        vm.prank(seller);
        market.list(tokenId, asset, price);
    }

    function _buy(address buyer, uint256 tokenId, address asset, uint256 price) internal {
        vm.prank(buyer);
        market.buy{value: asset == NATIVE ? price : 0}(tokenId, price);
    }

    function _transfer(address from, address to, uint256 tokenId) internal {
        vm.prank(from);
        market.transferFrom(from, to, tokenId);
    }

    function _offerLicense(address owner, uint256 tokenId, address asset, uint256 price) internal {
        vm.prank(owner);
        market.setLicenseTerms(tokenId, asset, price);
    }

    function _buyLicense(address buyer, uint256 tokenId, address asset, uint256 price)
        internal
        returns (uint256 licenseId)
    {
        vm.prank(buyer);
        licenseId = market.buyLicense{value: asset == NATIVE ? price : 0}(tokenId, price);
    }

    /// @dev creator mints, offers a licence at `price` in `asset`, and alice buys one.
    function _pendingLicense(address asset, uint256 price) internal returns (uint256 tokenId, uint256 licenseId) {
        tokenId = _mint(creator);
        _offerLicense(creator, tokenId, asset, price);
        licenseId = _buyLicense(alice, tokenId, asset, price);
    }

    function _deliver(address seller, uint256 licenseId, bytes memory key) internal {
        vm.prank(seller);
        market.deliverKey(licenseId, key);
    }

    /// @dev A pending licence delivered by creator to alice with a key unique to the licence.
    function _deliveredLicense() internal returns (uint256 tokenId, uint256 licenseId) {
        (tokenId, licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        _deliver(creator, licenseId, _key(licenseId));
    }

    function _refundable() internal returns (uint256 tokenId, uint256 licenseId) {
        (tokenId, licenseId) = _pendingLicense(NATIVE, LICENSE_PRICE);
        vm.warp(market.getLicense(licenseId).deliveryDeadline + 1);
    }

    function _withdraw(address who, address asset) internal {
        vm.prank(who);
        market.withdraw(asset);
    }

    function _pause() internal {
        vm.prank(admin);
        market.pause();
    }

    function _key(uint256 salt) internal pure returns (bytes memory) {
        return abi.encodePacked("ecies:", keccak256(abi.encode("key", salt)), uint16(salt));
    }

    // ------------------------------------------------------------------ expectations

    function _fee(uint256 amount) internal pure returns (uint256) {
        // ceil(amount * 3%), computed independently of the contract's Math.mulDiv.
        return (amount * 300 + 9_999) / 10_000;
    }

    function _expectRevert(bytes4 selector) internal {
        vm.expectRevert(abi.encodeWithSelector(selector));
    }

    function _expectUnauthorized(address account, bytes32 role) internal {
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role));
    }

    function _expectPaused() internal {
        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
    }

    function _expectMarketEmit() internal {
        vm.expectEmit(true, true, true, true, address(market));
    }

    function _balance(address asset, address who) internal view returns (uint256) {
        return asset == NATIVE ? who.balance : token.balanceOf(who);
    }

    function _owed(address who, address asset) internal view returns (uint256) {
        return market.owed(who, asset);
    }

    function _assertSolvent(address asset) internal view {
        vm.assertEq(
            _balance(asset, address(market)),
            market.totalEscrowed(asset) + market.totalOwed(asset),
            "vault balance != escrowed + owed"
        );
    }

    function _assertListingCleared(uint256 tokenId) internal view {
        PromptMarketplace.Listing memory l = market.getListing(tokenId);
        vm.assertEq(l.seller, address(0), "listing seller");
        vm.assertEq(l.asset, address(0), "listing asset");
        vm.assertEq(l.price, 0, "listing price");
    }

    function _assertLicenseState(uint256 licenseId, PromptMarketplace.LicenseState expected) internal view {
        vm.assertEq(uint256(market.getLicense(licenseId).state), uint256(expected), "licence state");
    }
}
