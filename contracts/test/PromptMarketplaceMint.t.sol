// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PromptMarketplaceBase} from "./PromptMarketplaceBase.t.sol";
import {PromptMarketplace} from "../src/PromptMarketplace.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @notice Minting, prompt metadata, royalties and the read-only views.
contract PromptMarketplaceMintTest is PromptMarketplaceBase {
    function test_Mint_AssignsTokenToCreator() public {
        uint256 tokenId = _mint(creator);

        vm.assertEq(tokenId, 1, "first id");
        vm.assertEq(market.promptCount(), 1, "promptCount");
        vm.assertEq(market.ownerOf(tokenId), creator, "owner");
        vm.assertEq(market.balanceOf(creator), 1, "balance");
    }

    function test_Mint_StoresPrompt() public {
        uint256 tokenId = _mint(creator, 750);

        PromptMarketplace.Prompt memory p = market.getPrompt(tokenId);
        vm.assertEq(p.creator, creator, "creator");
        vm.assertEq(uint256(p.royaltyBps), 750, "royaltyBps");
        vm.assertEq(p.contentHash, CONTENT_HASH, "contentHash");
        vm.assertEq(p.metadataCid, CID, "metadataCid");
    }

    function test_Mint_TokenURIIsIpfsCid() public {
        uint256 tokenId = _mint(creator);
        vm.assertEq(market.tokenURI(tokenId), string.concat("ipfs://", CID));
    }

    function test_Mint_SetsRoyaltyToCreator() public {
        uint256 tokenId = _mint(creator, ROYALTY_BPS);
        (address receiver, uint256 royalty) = market.royaltyInfo(tokenId, 10_000);
        vm.assertEq(receiver, creator, "receiver");
        vm.assertEq(royalty, ROYALTY_BPS, "royalty");

        // The royalty follows the creator, not the owner.
        _transfer(creator, alice, tokenId);
        (receiver, royalty) = market.royaltyInfo(tokenId, 1 ether);
        vm.assertEq(receiver, creator, "receiver after transfer");
        vm.assertEq(royalty, 0.1 ether, "royalty after transfer");
    }

    function test_Mint_EmitsTransferAndPromptMinted() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit IERC721.Transfer(address(0), creator, 1);
        _expectMarketEmit();
        emit PromptMarketplace.PromptMinted(1, creator, CID, CONTENT_HASH, ROYALTY_BPS);
        _mint(creator);
    }

    function test_Mint_IdsIncrementPerMint() public {
        uint256 first = _mint(creator);
        uint256 second = _mint(alice, 0);
        vm.assertEq(first, 1);
        vm.assertEq(second, 2);
        vm.assertEq(market.promptCount(), 2);
        vm.assertEq(market.ownerOf(second), alice);
        vm.assertEq(market.getPrompt(second).creator, alice);
    }

    function test_Mint_AcceptsZeroAndMaxRoyalty() public {
        uint256 none = _mint(creator, 0);
        uint96 maxBps = market.MAX_ROYALTY_BPS();
        uint256 max = _mint(creator, maxBps);

        (address receiver, uint256 royalty) = market.royaltyInfo(none, 1 ether);
        vm.assertEq(receiver, creator);
        vm.assertEq(royalty, 0);
        (, royalty) = market.royaltyInfo(max, 1 ether);
        vm.assertEq(royalty, 0.25 ether);
    }

    function testFuzz_Mint_RoyaltyInfo(uint96 royaltyBps, uint256 salePrice) public {
        royaltyBps = uint96(bound(royaltyBps, 0, 2_500));
        salePrice = bound(salePrice, 0, 1e40);
        uint256 tokenId = _mint(creator, royaltyBps);

        (address receiver, uint256 royalty) = market.royaltyInfo(tokenId, salePrice);
        vm.assertEq(receiver, creator);
        vm.assertEq(royalty, salePrice * royaltyBps / 10_000);
    }

    function test_RevertWhen_MintEmptyContentHash() public {
        _expectRevert(PromptMarketplace.EmptyContentHash.selector);
        vm.prank(creator);
        market.mint(CID, bytes32(0), ROYALTY_BPS);
    }

    function test_RevertWhen_MintRoyaltyTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.RoyaltyTooHigh.selector, uint96(2_501), uint96(2_500)));
        vm.prank(creator);
        market.mint(CID, CONTENT_HASH, 2_501);
    }

    function test_RevertWhen_MintPaused() public {
        _pause();
        _expectPaused();
        vm.prank(creator);
        market.mint(CID, CONTENT_HASH, ROYALTY_BPS);
    }

    function test_RevertWhen_MintToContractWithoutReceiver() public {
        // The mint is a safe mint: a contract caller must implement onERC721Received.
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(token)));
        vm.prank(address(token));
        market.mint(CID, CONTENT_HASH, ROYALTY_BPS);
    }

    function test_RevertWhen_GetPromptUnknown() public {
        _mint(creator);
        vm.expectRevert(abi.encodeWithSelector(PromptMarketplace.PromptNotFound.selector, uint256(2)));
        market.getPrompt(2);
    }

    function test_RevertWhen_TokenURIUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, uint256(7)));
        market.tokenURI(7);
    }

    function test_Views_DefaultsForUnknownIds() public view {
        _assertListingCleared(42);
        PromptMarketplace.LicenseTerms memory t = market.getLicenseTerms(42);
        vm.assertEq(t.asset, address(0));
        vm.assertEq(t.price, 0);
        PromptMarketplace.License memory lic = market.getLicense(42);
        vm.assertEq(lic.buyer, address(0));
        vm.assertEq(uint256(lic.state), uint256(PromptMarketplace.LicenseState.None));
    }
}
