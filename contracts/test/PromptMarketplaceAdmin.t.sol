// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PromptMarketplaceBase} from "./PromptMarketplaceBase.t.sol";
import {PromptMarketplace} from "../src/PromptMarketplace.sol";
import {PaymentVault} from "../src/PaymentVault.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";

/// @notice Construction, admin settings, roles, pausing, fee maths and ERC-165.
contract PromptMarketplaceAdminTest is PromptMarketplaceBase {
    // ------------------------------------------------------------------ constructor

    function test_Constructor_SetsRolesTreasuryAndWindow() public view {
        vm.assertTrue(market.hasRole(DEFAULT_ADMIN_ROLE, admin), "admin role");
        vm.assertTrue(market.hasRole(market.ARBITER_ROLE(), admin), "arbiter role");
        vm.assertTrue(market.hasRole(market.PAUSER_ROLE(), admin), "pauser role");
        vm.assertFalse(market.hasRole(DEFAULT_ADMIN_ROLE, treasury), "treasury is not admin");
        vm.assertEq(market.treasury(), treasury, "treasury");
        vm.assertEq(market.deliveryWindow(), WINDOW, "window");
        vm.assertEq(market.promptCount(), 0, "promptCount");
        vm.assertEq(market.licenseCount(), 0, "licenseCount");
        vm.assertEq(market.name(), "AscendNet Prompt");
        vm.assertEq(market.symbol(), "PROMPT");
        vm.assertEq(market.FEE_BPS(), 300, "fee bps");
        vm.assertEq(market.MAX_ROYALTY_BPS(), 2_500, "max royalty");
        vm.assertFalse(market.paused(), "paused");
    }

    function test_Constructor_EmitsTreasuryAndWindowEvents() public {
        vm.expectEmit(true, true, true, true);
        emit PaymentVault.TreasuryUpdated(address(0), treasury);
        vm.expectEmit(true, true, true, true);
        emit PromptMarketplace.DeliveryWindowUpdated(MAX_WINDOW);
        new PromptMarketplace(admin, treasury, MAX_WINDOW);
    }

    function test_RevertWhen_ConstructorAdminIsZero() public {
        _expectRevert(PaymentVault.ZeroAddress.selector);
        new PromptMarketplace(address(0), treasury, WINDOW);
    }

    function test_RevertWhen_ConstructorTreasuryIsZero() public {
        _expectRevert(PaymentVault.ZeroAddress.selector);
        new PromptMarketplace(admin, address(0), WINDOW);
    }

    function test_RevertWhen_ConstructorWindowIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidDeliveryWindow.selector, uint64(0)));
        new PromptMarketplace(admin, treasury, 0);
    }

    function test_RevertWhen_ConstructorWindowAboveMax() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidDeliveryWindow.selector, MAX_WINDOW + 1));
        new PromptMarketplace(admin, treasury, MAX_WINDOW + 1);
    }

    // ------------------------------------------------------------------ delivery window

    function test_SetDeliveryWindow_UpdatesAndEmits() public {
        _expectMarketEmit();
        emit PromptMarketplace.DeliveryWindowUpdated(MAX_WINDOW);
        vm.prank(admin);
        market.setDeliveryWindow(MAX_WINDOW);
        vm.assertEq(market.deliveryWindow(), MAX_WINDOW);

        vm.prank(admin);
        market.setDeliveryWindow(1);
        vm.assertEq(market.deliveryWindow(), 1);
    }

    function testFuzz_SetDeliveryWindow_AcceptsOnlyOneSecondToThirtyDays(uint64 window) public {
        bool valid = window != 0 && window <= MAX_WINDOW;
        if (!valid) {
            vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidDeliveryWindow.selector, window));
        }
        vm.prank(admin);
        market.setDeliveryWindow(window);
        vm.assertEq(market.deliveryWindow(), valid ? window : WINDOW);
    }

    function test_RevertWhen_SetDeliveryWindowZero() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidDeliveryWindow.selector, uint64(0)));
        vm.prank(admin);
        market.setDeliveryWindow(0);
    }

    function test_RevertWhen_SetDeliveryWindowAboveMax() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.InvalidDeliveryWindow.selector, MAX_WINDOW + 1));
        vm.prank(admin);
        market.setDeliveryWindow(MAX_WINDOW + 1);
    }

    function test_RevertWhen_SetDeliveryWindowCallerNotAdmin() public {
        _expectUnauthorized(stranger, DEFAULT_ADMIN_ROLE);
        vm.prank(stranger);
        market.setDeliveryWindow(1 days);
    }

    // ------------------------------------------------------------------ treasury

    function test_SetTreasury_UpdatesAndEmits() public {
        _expectMarketEmit();
        emit PaymentVault.TreasuryUpdated(treasury, carol);
        vm.prank(admin);
        market.setTreasury(carol);
        vm.assertEq(market.treasury(), carol);
    }

    function test_RevertWhen_SetTreasuryZero() public {
        _expectRevert(PaymentVault.ZeroAddress.selector);
        vm.prank(admin);
        market.setTreasury(address(0));
    }

    function test_RevertWhen_SetTreasuryCallerNotAdmin() public {
        _expectUnauthorized(treasury, DEFAULT_ADMIN_ROLE);
        vm.prank(treasury);
        market.setTreasury(treasury);
    }

    // ------------------------------------------------------------------ asset allow-list

    function test_SetAssetAllowed_TogglesAndEmits() public {
        address asset = makeAddr("someToken");
        vm.assertFalse(market.isAllowedAsset(asset));

        _expectMarketEmit();
        emit PaymentVault.AssetAllowanceSet(asset, true);
        vm.prank(admin);
        market.setAssetAllowed(asset, true);
        vm.assertTrue(market.assetAllowed(asset));
        vm.assertTrue(market.isAllowedAsset(asset));

        _expectMarketEmit();
        emit PaymentVault.AssetAllowanceSet(asset, false);
        vm.prank(admin);
        market.setAssetAllowed(asset, false);
        vm.assertFalse(market.assetAllowed(asset));
        vm.assertFalse(market.isAllowedAsset(asset));
    }

    function test_IsAllowedAsset_NativeAlwaysAllowed() public view {
        vm.assertTrue(market.isAllowedAsset(NATIVE));
        vm.assertFalse(market.assetAllowed(NATIVE));
        vm.assertTrue(market.isAllowedAsset(address(token)));
    }

    function test_RevertWhen_SetAssetAllowedNative() public {
        _expectRevert(PaymentVault.ZeroAddress.selector);
        vm.prank(admin);
        market.setAssetAllowed(NATIVE, false);
    }

    function test_RevertWhen_SetAssetAllowedCallerNotAdmin() public {
        _expectUnauthorized(alice, DEFAULT_ADMIN_ROLE);
        vm.prank(alice);
        market.setAssetAllowed(address(token), false);
    }

    // ------------------------------------------------------------------ pause

    function test_PauseAndUnpause_EmitAndToggle() public {
        _expectMarketEmit();
        emit Pausable.Paused(admin);
        _pause();
        vm.assertTrue(market.paused());

        _expectMarketEmit();
        emit Pausable.Unpaused(admin);
        vm.prank(admin);
        market.unpause();
        vm.assertFalse(market.paused());

        // Trading works again after unpausing.
        uint256 tokenId = _mint(creator);
        vm.assertEq(market.ownerOf(tokenId), creator);
    }

    function test_Pause_GrantedPauserCanPause() public {
        bytes32 pauserRole = market.PAUSER_ROLE();
        vm.prank(admin);
        market.grantRole(pauserRole, carol);
        vm.prank(carol);
        market.pause();
        vm.assertTrue(market.paused());
    }

    function test_RevertWhen_PauseCallerNotPauser() public {
        _expectUnauthorized(stranger, market.PAUSER_ROLE());
        vm.prank(stranger);
        market.pause();
    }

    function test_RevertWhen_UnpauseCallerNotPauser() public {
        _pause();
        _expectUnauthorized(stranger, market.PAUSER_ROLE());
        vm.prank(stranger);
        market.unpause();
    }

    function test_RevertWhen_PauseWhilePaused() public {
        _pause();
        _expectPaused();
        vm.prank(admin);
        market.pause();
    }

    function test_RevertWhen_UnpauseWhileNotPaused() public {
        _expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(admin);
        market.unpause();
    }

    // ------------------------------------------------------------------ fee maths

    function test_FeeOf_IsThreePercentRoundedUp() public view {
        vm.assertEq(market.feeOf(0), 0);
        vm.assertEq(market.feeOf(1), 1);
        vm.assertEq(market.feeOf(33), 1); // 0.99 -> 1
        vm.assertEq(market.feeOf(34), 2); // 1.02 -> 2
        vm.assertEq(market.feeOf(100), 3); // exact
        vm.assertEq(market.feeOf(10_001), 301); // 300.03 -> 301
        vm.assertEq(market.feeOf(1 ether), 0.03 ether);
    }

    function testFuzz_FeeOf_MatchesCeil(uint256 amount) public view {
        amount = bound(amount, 0, type(uint256).max / 300);
        uint256 fee = market.feeOf(amount);
        vm.assertEq(fee, _fee(amount));
        vm.assertLe(fee, amount);
    }

    // ------------------------------------------------------------------ ERC-165

    function test_SupportsInterface() public view {
        vm.assertTrue(market.supportsInterface(type(IERC165).interfaceId), "ERC165");
        vm.assertTrue(market.supportsInterface(type(IERC721).interfaceId), "ERC721");
        vm.assertTrue(market.supportsInterface(type(IERC721Metadata).interfaceId), "ERC721Metadata");
        vm.assertTrue(market.supportsInterface(type(IERC2981).interfaceId), "ERC2981");
        vm.assertTrue(market.supportsInterface(type(IAccessControl).interfaceId), "AccessControl");
        vm.assertFalse(market.supportsInterface(0xffffffff), "invalid id");
        vm.assertFalse(market.supportsInterface(0x12345678), "unknown id");
    }
}
