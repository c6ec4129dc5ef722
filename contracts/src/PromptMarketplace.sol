// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PaymentVault} from "./PaymentVault.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";

/// @title PromptMarketplace
/// @notice AI prompts as ERC-721 NFTs. The prompt text lives off-chain, encrypted, addressed by
/// a metadata CID and pinned by a content hash. Owners sell the NFT itself (with the ERC-2981
/// royalty enforced on every sale) and licences to the content. A licence payment waits in
/// escrow until the seller posts the content key encrypted to the buyer; if it is not delivered
/// by the deadline the buyer gets the whole payment back.
/// @dev The state machine is documented in docs/CONTRACTS.md.
contract PromptMarketplace is PaymentVault, ERC721, ERC2981 {
    enum LicenseState {
        None,
        Pending,
        Delivered,
        Refunded
    }

    struct Prompt {
        address creator;
        uint96 royaltyBps;
        bytes32 contentHash;
        string metadataCid;
    }

    struct Listing {
        address seller;
        address asset;
        uint256 price;
    }

    struct LicenseTerms {
        address asset;
        uint256 price;
    }

    struct License {
        uint256 tokenId;
        address buyer;
        address seller;
        address asset;
        uint256 price;
        uint64 deliveryDeadline;
        LicenseState state;
        bool rated;
    }

    /// @notice The highest royalty a creator may set: 25%.
    uint96 public constant MAX_ROYALTY_BPS = 2_500;
    uint64 internal constant _MAX_DELIVERY_WINDOW = 30 days;

    /// @notice How long a seller has to deliver the content key after a licence purchase.
    uint64 public deliveryWindow;
    uint256 public promptCount;
    uint256 public licenseCount;

    mapping(uint256 tokenId => Prompt) private _prompts;
    mapping(uint256 tokenId => Listing) private _listings;
    mapping(uint256 tokenId => LicenseTerms) private _licenseTerms;
    mapping(uint256 licenseId => License) private _licenses;
    /// @notice keccak256(seller, encryptedKey) of every delivery, so no delivery can be replayed.
    mapping(bytes32 deliveryHash => bool) public deliveryUsed;

    event DeliveryWindowUpdated(uint64 deliveryWindow);
    event PromptMinted(
        uint256 indexed tokenId, address indexed creator, string metadataCid, bytes32 contentHash, uint96 royaltyBps
    );
    event PromptListed(uint256 indexed tokenId, address indexed seller, address indexed asset, uint256 price);
    event ListingCancelled(uint256 indexed tokenId, address indexed seller);
    event PromptSold(
        uint256 indexed tokenId,
        address indexed seller,
        address indexed buyer,
        address asset,
        uint256 price,
        uint256 sellerProceeds,
        uint256 royalty,
        address royaltyReceiver,
        uint256 fee
    );
    event LicenseTermsSet(uint256 indexed tokenId, address indexed asset, uint256 price);
    event LicensePurchased(
        uint256 indexed licenseId,
        uint256 indexed tokenId,
        address indexed buyer,
        address seller,
        address asset,
        uint256 price,
        uint64 deliveryDeadline
    );
    event KeyDelivered(
        uint256 indexed licenseId,
        uint256 indexed tokenId,
        address indexed buyer,
        address seller,
        bytes encryptedKey,
        uint256 sellerProceeds,
        uint256 fee
    );
    event LicenseRefunded(uint256 indexed licenseId, uint256 indexed tokenId, address indexed buyer, uint256 refund);
    event PromptRated(
        uint256 indexed tokenId, uint256 indexed licenseId, address indexed rater, uint8 score, string reviewCid
    );

    error InvalidDeliveryWindow(uint64 deliveryWindow);
    error EmptyContentHash();
    error RoyaltyTooHigh(uint96 royaltyBps, uint96 maxBps);
    error PromptNotFound(uint256 tokenId);
    error NotTokenOwner(uint256 tokenId, address caller);
    error NotListed(uint256 tokenId);
    error PriceMismatch(uint256 price, uint256 expected);
    error SellerCannotBuy(address seller);
    error LicenseNotOffered(uint256 tokenId);
    error LicenseNotFound(uint256 licenseId);
    error WrongLicenseState(uint256 licenseId, LicenseState state);
    error NotLicenseSeller(uint256 licenseId, address caller);
    error NotLicenseBuyer(uint256 licenseId, address caller);
    error DeliveryDeadlinePassed(uint256 licenseId, uint64 deadline);
    error DeliveryDeadlineNotReached(uint256 licenseId, uint64 deadline);
    error EmptyKey();
    error DeliveryReplayed(bytes32 deliveryHash);
    error AlreadyRated(uint256 licenseId);
    error InvalidScore(uint8 score);

    constructor(address admin, address treasury_, uint64 deliveryWindow_)
        PaymentVault(admin, treasury_)
        ERC721("AscendNet Prompt", "PROMPT")
    {
        _setDeliveryWindow(deliveryWindow_);
    }

    // ================================================================ admin

    function setDeliveryWindow(uint64 deliveryWindow_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setDeliveryWindow(deliveryWindow_);
    }

    // ================================================================ minting

    /// @notice Mint a prompt NFT to the caller, who becomes its creator and royalty receiver.
    /// @param metadataCid CID of the metadata document (docs/PROMPT_SCHEMA.md).
    /// @param contentHash sha256 of the plaintext prompt content.
    function mint(string calldata metadataCid, bytes32 contentHash, uint96 royaltyBps)
        external
        whenNotPaused
        returns (uint256 tokenId)
    {
        if (contentHash == bytes32(0)) revert EmptyContentHash();
        if (royaltyBps > MAX_ROYALTY_BPS) revert RoyaltyTooHigh(royaltyBps, MAX_ROYALTY_BPS);
        tokenId = ++promptCount;
        _prompts[tokenId] = Prompt(msg.sender, royaltyBps, contentHash, metadataCid);
        _setTokenRoyalty(tokenId, msg.sender, royaltyBps);
        _safeMint(msg.sender, tokenId);
        emit PromptMinted(tokenId, msg.sender, metadataCid, contentHash, royaltyBps);
    }

    function getPrompt(uint256 tokenId) external view returns (Prompt memory) {
        _requirePrompt(tokenId);
        return _prompts[tokenId];
    }

    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        return string.concat("ipfs://", _prompts[tokenId].metadataCid);
    }

    // ================================================================ NFT trading

    /// @notice List the caller's prompt NFT for sale. A new listing replaces an old one; any
    /// transfer of the token clears it.
    function list(uint256 tokenId, address asset, uint256 price) external whenNotPaused {
        _requireTokenOwner(tokenId);
        _requireAllowed(asset);
        if (price == 0) revert ZeroAmount();
        _listings[tokenId] = Listing(msg.sender, asset, price);
        emit PromptListed(tokenId, msg.sender, asset, price);
    }

    function cancelListing(uint256 tokenId) external {
        Listing storage l = _listings[tokenId];
        if (l.seller == address(0)) revert NotListed(tokenId);
        if (msg.sender != l.seller) revert NotTokenOwner(tokenId, msg.sender);
        delete _listings[tokenId];
        emit ListingCancelled(tokenId, msg.sender);
    }

    /// @notice Buy a listed prompt NFT. `expectedPrice` guards against a listing changed after
    /// the buyer read it. The seller, the royalty receiver and the treasury are credited.
    function buy(uint256 tokenId, uint256 expectedPrice) external payable whenNotPaused nonReentrant {
        Listing memory l = _listings[tokenId];
        if (l.seller == address(0)) revert NotListed(tokenId);
        if (l.price != expectedPrice) revert PriceMismatch(l.price, expectedPrice);
        if (msg.sender == l.seller) revert SellerCannotBuy(msg.sender);
        delete _listings[tokenId];
        _collect(l.asset, l.price);

        (uint256 afterFee, uint256 fee) = _chargeFee(l.asset, l.price);
        (address receiver, uint256 royalty) = royaltyInfo(tokenId, l.price);
        // NOTE: royalty <= 25% and fee <= 3% rounded up, so royalty never exceeds afterFee.
        uint256 sellerProceeds = afterFee - royalty;
        _credit(receiver, l.asset, royalty);
        _credit(l.seller, l.asset, sellerProceeds);
        _transfer(l.seller, msg.sender, tokenId);
        emit PromptSold(tokenId, l.seller, msg.sender, l.asset, l.price, sellerProceeds, royalty, receiver, fee);
    }

    function getListing(uint256 tokenId) external view returns (Listing memory) {
        return _listings[tokenId];
    }

    // ================================================================ licences

    /// @notice Offer licences to the prompt at `price` in `asset`; a price of 0 stops offering.
    function setLicenseTerms(uint256 tokenId, address asset, uint256 price) external whenNotPaused {
        _requireTokenOwner(tokenId);
        if (price != 0) _requireAllowed(asset);
        _licenseTerms[tokenId] = LicenseTerms(asset, price);
        emit LicenseTermsSet(tokenId, asset, price);
    }

    function getLicenseTerms(uint256 tokenId) external view returns (LicenseTerms memory) {
        return _licenseTerms[tokenId];
    }

    /// @notice Buy a licence. The payment is escrowed until the current owner delivers the
    /// content key encrypted to the buyer, or refunded after the delivery deadline.
    function buyLicense(uint256 tokenId, uint256 expectedPrice)
        external
        payable
        whenNotPaused
        nonReentrant
        returns (uint256 licenseId)
    {
        _requirePrompt(tokenId);
        LicenseTerms memory t = _licenseTerms[tokenId];
        if (t.price == 0) revert LicenseNotOffered(tokenId);
        if (t.price != expectedPrice) revert PriceMismatch(t.price, expectedPrice);
        address seller = ownerOf(tokenId);
        if (msg.sender == seller) revert SellerCannotBuy(msg.sender);
        _collect(t.asset, t.price);
        licenseId = ++licenseCount;
        uint64 deadline = uint64(block.timestamp) + deliveryWindow;
        _licenses[licenseId] = License(tokenId, msg.sender, seller, t.asset, t.price, deadline, LicenseState.Pending, false);
        emit LicensePurchased(licenseId, tokenId, msg.sender, seller, t.asset, t.price, deadline);
    }

    /// @notice The seller posts the content key, encrypted to the buyer, and is paid the price
    /// minus 3%. Each encrypted key can be posted once, so a delivery cannot be replayed.
    function deliverKey(uint256 licenseId, bytes calldata encryptedKey) external nonReentrant {
        License storage lic = _requireLicenseState(licenseId, LicenseState.Pending);
        if (msg.sender != lic.seller) revert NotLicenseSeller(licenseId, msg.sender);
        if (block.timestamp > lic.deliveryDeadline) revert DeliveryDeadlinePassed(licenseId, lic.deliveryDeadline);
        if (encryptedKey.length == 0) revert EmptyKey();
        // NOTE: keyed by seller, so nobody can use up another seller's ciphertext by copying a
        // pending delivery from the mempool, while a seller still cannot reuse its own bytes.
        bytes32 deliveryHash = keccak256(abi.encode(lic.seller, encryptedKey));
        if (deliveryUsed[deliveryHash]) revert DeliveryReplayed(deliveryHash);
        deliveryUsed[deliveryHash] = true;
        lic.state = LicenseState.Delivered;
        (uint256 proceeds, uint256 fee) = _chargeFee(lic.asset, lic.price);
        _credit(lic.seller, lic.asset, proceeds);
        emit KeyDelivered(licenseId, lic.tokenId, lic.buyer, lic.seller, encryptedKey, proceeds, fee);
    }

    /// @notice Anyone refunds an undelivered licence after its deadline: the buyer gets the whole
    /// price back, with no fee. Never blocked by pausing.
    function refundLicense(uint256 licenseId) external nonReentrant {
        License storage lic = _requireLicenseState(licenseId, LicenseState.Pending);
        if (block.timestamp <= lic.deliveryDeadline) {
            revert DeliveryDeadlineNotReached(licenseId, lic.deliveryDeadline);
        }
        lic.state = LicenseState.Refunded;
        _credit(lic.buyer, lic.asset, lic.price);
        emit LicenseRefunded(licenseId, lic.tokenId, lic.buyer, lic.price);
    }

    /// @notice The holder of a delivered licence rates the prompt, once per licence.
    /// @param score 1 to 5.
    function rate(uint256 licenseId, uint8 score, string calldata reviewCid) external {
        License storage lic = _requireLicenseState(licenseId, LicenseState.Delivered);
        if (msg.sender != lic.buyer) revert NotLicenseBuyer(licenseId, msg.sender);
        if (lic.rated) revert AlreadyRated(licenseId);
        if (score < 1 || score > 5) revert InvalidScore(score);
        lic.rated = true;
        emit PromptRated(lic.tokenId, licenseId, msg.sender, score, reviewCid);
    }

    function getLicense(uint256 licenseId) external view returns (License memory) {
        return _licenses[licenseId];
    }

    // ================================================================ overrides

    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(AccessControl, ERC721, ERC2981)
        returns (bool)
    {
        return super.supportsInterface(interfaceId);
    }

    /// @dev Any movement of a token clears its listing and its licence terms: a new owner sells
    /// nothing, and owes no deliveries, on terms it did not set. Licences already bought stay
    /// with the seller recorded at purchase.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        Listing storage l = _listings[tokenId];
        if (l.seller != address(0)) {
            address seller = l.seller;
            delete _listings[tokenId];
            emit ListingCancelled(tokenId, seller);
        }
        if (_licenseTerms[tokenId].price != 0) {
            delete _licenseTerms[tokenId];
            emit LicenseTermsSet(tokenId, address(0), 0);
        }
    }

    // ================================================================ internals

    function _requirePrompt(uint256 tokenId) private view {
        if (_prompts[tokenId].creator == address(0)) revert PromptNotFound(tokenId);
    }

    function _requireTokenOwner(uint256 tokenId) private view {
        _requirePrompt(tokenId);
        if (ownerOf(tokenId) != msg.sender) revert NotTokenOwner(tokenId, msg.sender);
    }

    function _requireLicenseState(uint256 licenseId, LicenseState expected) private view returns (License storage lic) {
        lic = _licenses[licenseId];
        if (lic.state == LicenseState.None) revert LicenseNotFound(licenseId);
        if (lic.state != expected) revert WrongLicenseState(licenseId, lic.state);
    }

    function _setDeliveryWindow(uint64 deliveryWindow_) private {
        if (deliveryWindow_ == 0 || deliveryWindow_ > _MAX_DELIVERY_WINDOW) revert InvalidDeliveryWindow(deliveryWindow_);
        deliveryWindow = deliveryWindow_;
        emit DeliveryWindowUpdated(deliveryWindow_);
    }
}
