// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {PromptMarketplace} from "../../src/PromptMarketplace.sol";
import {TestToken} from "../../src/mocks/TestToken.sol";
import {PromptMarketplaceHandler} from "./PromptMarketplaceHandler.sol";

/// @dev Stateful fuzzing of PromptMarketplace through PromptMarketplaceHandler. CI runs it at
/// 10,000 runs per invariant: `FOUNDRY_PROFILE=ci forge test --match-path 'contracts/test/invariant/*'`.
/// Each invariant is evaluated after every handler call, so the checks keep external calls to a
/// minimum (forge charges ~10 us per call frame) and call vm.assert* only once a check has failed.
/// Every call into the contract is a low-level call whose outcome the handler's model predicts:
/// expected reverts are swallowed (so forge's `reverts` column stays 0) and any surprise, an
/// unexpected success or an unexpected revert, is counted and fails invariant_TerminalStatesFinal.
contract PromptMarketplaceInvariantTest is TestBase {
    PromptMarketplace internal pm;
    TestToken internal token;
    PromptMarketplaceHandler internal handler;
    /// Storage slot of the marketplace's licence mapping, plus one; 0 when setUp could not find
    /// it (states are then read through getLicense).
    uint256 internal licensesSlotPlusOne;

    function setUp() public {
        vm.warp(1_700_000_000);
        address admin = makeAddr("admin");
        token = new TestToken();
        pm = new PromptMarketplace(admin, makeAddr("treasury"), 2 days);
        vm.prank(admin);
        pm.setAssetAllowed(address(token), true);

        handler = new PromptMarketplaceHandler(pm, token, admin, makeAddr("treasury2"));
        handler.seedMarket();
        licensesSlotPlusOne = _findLicensesSlot();

        bytes4[] memory selectors = new bytes4[](14);
        selectors[0] = PromptMarketplaceHandler.mint.selector;
        selectors[1] = PromptMarketplaceHandler.list.selector;
        selectors[2] = PromptMarketplaceHandler.cancelListing.selector;
        selectors[3] = PromptMarketplaceHandler.buy.selector;
        selectors[4] = PromptMarketplaceHandler.transferToken.selector;
        selectors[5] = PromptMarketplaceHandler.setLicenseTerms.selector;
        selectors[6] = PromptMarketplaceHandler.buyLicense.selector;
        selectors[7] = PromptMarketplaceHandler.deliverKey.selector;
        selectors[8] = PromptMarketplaceHandler.refundLicense.selector;
        selectors[9] = PromptMarketplaceHandler.rate.selector;
        selectors[10] = PromptMarketplaceHandler.advance.selector;
        selectors[11] = PromptMarketplaceHandler.withdraw.selector;
        selectors[12] = PromptMarketplaceHandler.warp.selector;
        selectors[13] = PromptMarketplaceHandler.adminAction.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        excludeSender(address(pm));
        excludeSender(address(handler));
    }

    // ------------------------------------------------------------------ 1. solvency

    /// For ETH and the token: balance == totalEscrowed + totalOwed; totalOwed equals the sum of
    /// owed[] over every actor and both treasuries as the model tracks it (each account's owed
    /// is re-read against the model whenever it changes: owedMismatches); totalEscrowed equals
    /// the model's pending licences; and the balance equals payments in minus withdrawals.
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
            uint256 bal = i == 0 ? address(pm).balance : token.balanceOf(address(pm));
            uint256 totalEscrowed = pm.totalEscrowed(asset);
            uint256 totalOwed = pm.totalOwed(asset);
            _eq(bal, totalEscrowed + totalOwed, "balance != totalEscrowed + totalOwed");
            _eq(totalOwed, owedSum[i], "totalOwed != sum of owed over actors + treasuries");
            _eq(totalEscrowed, escrowed[i], "totalEscrowed != pending licences (model)");
            _eq(bal, deposited[i] - withdrawn[i], "balance != payments - withdrawals");
        }
        _eq(owedMismatches, 0, "an account's owed or balance differs from the model");
        _eq(underflows, 0, "model underflow");
    }

    // ------------------------------------------------------------------ 2. at-most-once payout

    /// Every licence is either refunded or delivered, never both, and at most once (one
    /// settling call, one settlement event); a settled licence released exactly its price. (A
    /// sale consumes its listing: buying an unlisted token must revert, see the divergence
    /// count in invariant_TerminalStatesFinal.)
    function invariant_AtMostOncePayout() public view {
        (uint256 id, string memory reason) = handler.checkLicenses();
        if (id != 0) vm.assertEq(id, 0, string.concat(reason, " (left: the id)"));
    }

    // ------------------------------------------------------------------ 3. terminal states are final

    /// Once a licence is Delivered or Refunded its on-chain state never changes: the model
    /// records the state when the settling call succeeds and never leaves it, and every check
    /// re-reads each settled licence. Also fails on any call that succeeded or reverted against
    /// the model's prediction (a second delivery, a replayed key, a refund before the deadline,
    /// buying an unlisted token), and on a sale or transfer that left the NFT with the wrong owner.
    function invariant_TerminalStatesFinal() public view {
        (uint256 divergences, uint256 ownership, uint256[] memory ids, uint8[] memory recorded) =
            handler.settledLicenses();
        for (uint256 i = 0; i < ids.length; i++) {
            uint8 st = _state(ids[i]);
            if (st != recorded[i]) vm.assertEq(uint256(st), uint256(recorded[i]), "a settled licence state changed");
        }
        _eq(divergences, 0, "a call succeeded or reverted against the model");
        _eq(ownership, 0, "NFT owner differs from the model");
    }

    // ------------------------------------------------------------------ 4. payout + fee == price

    /// NFT sale: seller proceeds + royalty + fee == price (fee 3% rounded up, royalty rounded
    /// down, both to the right accounts). Delivered licence: seller proceeds + fee == price.
    /// Refunded licence: refund == price. Each is measured from owed[] when it happens and
    /// compared with the model and the contract's own event (mismatch counter); the running
    /// sums re-check them in aggregate.
    function invariant_PayoutPlusFeeEqualsPrice() public view {
        (uint256 mismatches, uint256[6] memory sums) = handler.priceTotals();
        _eq(mismatches, 0, "a sale or settlement credited other amounts than the model/event");
        _eq(sums[1], sums[0], "sale: proceeds + royalty + fee != price");
        _eq(sums[3], sums[2], "licence: proceeds + fee != price");
        _eq(sums[5], sums[4], "licence: refund != price");
    }

    // ------------------------------------------------------------------ helpers

    /// Calls the (comparatively expensive) cheatcode only once the check has failed.
    function _eq(uint256 a, uint256 b, string memory reason) internal pure {
        if (a != b) vm.assertEq(a, b, reason);
    }

    /// A licence's state. vm.load reads one slot where getLicense copies the whole struct, and
    /// this runs for every settled licence after every call.
    function _state(uint256 id) internal view returns (uint8) {
        if (licensesSlotPlusOne == 0) return uint8(pm.getLicense(id).state);
        return _loadState(id, licensesSlotPlusOne - 1);
    }

    /// Licence layout: tokenId (slot +0), buyer, seller, asset, price (+1..+4), then
    /// deliveryDeadline and state packed in slot +5, state at byte offset 8.
    function _loadState(uint256 id, uint256 mappingSlot) internal view returns (uint8) {
        uint256 base = uint256(keccak256(abi.encode(id, mappingSlot)));
        return uint8(uint256(vm.load(address(pm), bytes32(base + 5))) >> 64);
    }

    /// Finds the licence mapping's slot by matching the seeded licences against getLicense;
    /// returns 0 if the layout is not the expected one.
    function _findLicensesSlot() internal view returns (uint256) {
        uint256 n = pm.licenseCount();
        for (uint256 s = 0; s < 64; s++) {
            bool all = n != 0;
            for (uint256 id = 1; id <= n && all; id++) {
                PromptMarketplace.License memory l = pm.getLicense(id);
                bytes32 base = keccak256(abi.encode(id, s));
                all = vm.load(address(pm), base) == bytes32(l.tokenId)
                    && vm.load(address(pm), bytes32(uint256(base) + 1)) == bytes32(uint256(uint160(l.buyer)))
                    && _loadState(id, s) == uint8(l.state);
            }
            if (all) return s + 1;
        }
        return 0;
    }
}
