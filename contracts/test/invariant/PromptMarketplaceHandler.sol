// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "../utils/TestBase.sol";
import {PromptMarketplace} from "../../src/PromptMarketplace.sol";
import {TestToken} from "../../src/mocks/TestToken.sol";

/// @dev Drives PromptMarketplace through bounded random actions by a small cast (3 sellers who
/// mint, 3 buyers, anyone may resell what they bought; the admin and two treasuries), in ETH and
/// an allow-listed TestToken, and keeps an independent model of the contract: token ownership,
/// listings, licence terms, every licence's state machine and deadline, and what every account
/// is owed.
///
/// Picking: actions start at a random existing token or licence and take the first one the
/// model says is eligible. One call in eight to buy, buyLicense, deliverKey, refundLicense or
/// rate ("fuzzy") takes the random id as it is and tries it whatever its state (buying an
/// unlisted token or a licence whose terms a transfer cleared, at the stale price); refunds
/// are tried before the deadline about half the time; deliveries sometimes reuse a key already
/// delivered (by the same seller: must revert; by another: must succeed); every settlement is
/// retried at once (must revert). The model predicts whether each call must succeed or revert,
/// and a disagreement is counted.
///
/// Assertions inside a handler would only count as reverts (fail_on_revert = false), so every
/// check made here increments a counter that the invariant functions require to be zero.
/// The model lives in this contract's storage; the marketplace is read only where a value must
/// be measured (forge charges roughly 10 us per call frame, and CI runs 10,000 runs).
contract PromptMarketplaceHandler is TestBase {
    address internal constant NATIVE = address(0);
    uint256 internal constant BPS = 10_000;

    // licence states, as PromptMarketplace.LicenseState
    uint8 internal constant L_PENDING = 1;
    uint8 internal constant L_DELIVERED = 2;
    uint8 internal constant L_REFUNDED = 3;

    PromptMarketplace public immutable pm;
    TestToken public immutable token;
    address public immutable admin;

    address[] internal _sellers;
    address[] internal _buyers;
    address[] internal _actors; // sellers then buyers
    address[] internal _treasuries;
    /// Every account the marketplace can ever credit: the actors and both treasuries.
    address[] internal _accounts;
    address[2] internal _assets;

    // ------------------------------------------------------------------ the model

    struct MToken {
        address creator; // also the royalty receiver
        uint96 royaltyBps;
        address owner;
        address listSeller; // 0 when not listed
        address listAsset;
        uint256 listPrice;
        bool offered; // licences on offer (terms set with a non-zero price, not cleared since)
        address termsAsset; // the last terms set, kept after they are cleared
        uint256 termsPrice;
    }

    /// Packed so the per-licence checks, run after every call, read few slots.
    struct MLicense {
        address buyer;
        uint8 state;
        bool rated;
        uint8 settleCalls; // successful settling calls
        uint8 deliveredEvents;
        uint8 refundedEvents;
        address seller;
        uint64 deadline;
        address asset;
        uint96 tokenId;
        uint128 price;
        uint128 paid; // measured: seller proceeds + fee + buyer refund credited for this licence
        bytes32 keyHash; // keccak256(seller, key) of the delivery
    }

    uint256 public tokenCount;
    uint256 public licenseCount;
    mapping(uint256 tokenId => MToken) internal _tokens;
    mapping(uint256 licenseId => MLicense) internal _lics;
    uint64 public deliveryWindow;
    address public treasury;
    bool public paused;
    /// The last key delivered by anyone, and by each seller, to try replays.
    bytes internal _lastKey;
    mapping(address seller => bytes) internal _lastKeyOf;
    /// keccak256(seller, key) of every delivery, as the contract keys its replay guard.
    mapping(bytes32 => bool) internal _deliveryUsed;

    mapping(address account => mapping(address asset => uint256)) public ghostOwed;

    struct Totals {
        uint256[2] escrowed; // pending licences
        uint256[2] owedSum; // sum of ghostOwed over every account
        uint256[2] deposited;
        uint256[2] withdrawn;
        uint256 owedMismatches; // an account's owed or a balance differed from the model
        uint256 payoutMismatches; // a settlement or sale credited other amounts than the model or its event
        uint256 ownershipMismatches; // a sale or transfer left the NFT with the wrong owner
        uint256 divergences; // a call succeeded/reverted against the model's prediction
        uint256 modelUnderflows;
        uint256 sales;
        uint256 sumSalePrice;
        uint256 sumSaleSplit; // seller proceeds + royalty + fee, as measured
        uint256 sumDeliveredPrice;
        uint256 sumDeliveredSplit; // seller proceeds + fee, as measured
        uint256 sumRefundedPrice;
        uint256 sumRefunded;
    }

    Totals internal _t;

    // coverage counters
    uint256 public nMinted;
    uint256 public nListed;
    uint256 public nListingsCancelled;
    uint256 public nTermsSet;
    uint256 public nLicensesBought;
    uint256 public nDelivered;
    uint256 public nRefunded;
    uint256 public nRated;
    uint256 public nTransfers;
    uint256 public nWithdrawals;
    uint256 public nExpectedReverts;

    // the last settlement/sale event decoded
    bool internal _evSeen;
    uint256 internal _evProceeds;
    uint256 internal _evRoyalty;
    uint256 internal _evFee;
    uint256 internal _evRefund;
    address internal _evReceiver;
    uint256 internal _nonce;

    constructor(PromptMarketplace pm_, TestToken token_, address admin_, address treasury2) {
        pm = pm_;
        token = token_;
        admin = admin_;
        _assets[0] = NATIVE;
        _assets[1] = address(token_);
        treasury = pm_.treasury();
        paused = pm_.paused();
        deliveryWindow = pm_.deliveryWindow();
        for (uint256 i = 0; i < 3; i++) {
            _sellers.push(makeAddr(string.concat("seller", _str(i))));
            _buyers.push(makeAddr(string.concat("buyer", _str(i))));
        }
        for (uint256 i = 0; i < 3; i++) _actors.push(_sellers[i]);
        for (uint256 i = 0; i < 3; i++) _actors.push(_buyers[i]);
        for (uint256 i = 0; i < 6; i++) {
            address a = _actors[i];
            // Fund once, generously, so no action needs a deal or a mint.
            vm.deal(a, 1e30);
            token_.mint(a, 1e30);
            vm.prank(a);
            token_.approve(address(pm_), type(uint256).max);
            _accounts.push(a);
        }
        _treasuries.push(treasury);
        _treasuries.push(treasury2);
        _accounts.push(treasury);
        _accounts.push(treasury2);
    }

    // ================================================================== NFTs

    /// A seller mints a prompt: royalty 0, the 25% maximum, or anything between.
    function mint(uint256 actorSeed, uint256 royaltySeed) public {
        if (paused) return;
        address creator = _sellers[actorSeed % 3];
        uint256 r = royaltySeed % 4;
        uint96 royalty = r == 0 ? 0 : r == 1 ? 2_500 : uint96(bound(royaltySeed >> 2, 0, 2_500));
        bytes memory data =
            abi.encodeCall(PromptMarketplace.mint, ("bafyprompt", keccak256(abi.encode(++_nonce)), royalty));
        (bool ok, bytes memory ret) = _callRet(creator, 0, data, true);
        if (!ok) return;
        uint256 id = ++tokenCount;
        if (abi.decode(ret, (uint256)) != id) _t.divergences++; // ids are sequential
        MToken storage tk = _tokens[id];
        tk.creator = creator;
        tk.royaltyBps = royalty;
        tk.owner = creator;
        nMinted++;
    }

    function list(uint256 tokenSeed, uint256 priceSeed) public {
        if (paused) return;
        uint256 id = _pickToken(tokenSeed, 0);
        if (id != 0) _list(id, _assets[priceSeed % 2], _amount(priceSeed >> 1));
    }

    function cancelListing(uint256 tokenSeed) public {
        uint256 id = _pickToken(tokenSeed, 1);
        if (id == 0) return;
        MToken storage tk = _tokens[id];
        if (!_call(tk.listSeller, 0, abi.encodeCall(PromptMarketplace.cancelListing, (id)))) return;
        tk.listSeller = address(0);
        nListingsCancelled++;
    }

    /// Buys a listed token (or, fuzzy, any token: it must revert unless listed).
    function buy(uint256 tokenSeed, uint256 buyerSeed) public {
        if (paused) return;
        bool fuzzy = _fuzzy(tokenSeed);
        uint256 id = fuzzy ? _randomToken(tokenSeed) : _pickToken(tokenSeed, 1);
        if (id != 0) _buy(id, buyerSeed);
    }

    /// The owner gives the NFT to another actor; any listing on it must disappear.
    function transferToken(uint256 tokenSeed, uint256 toSeed) public {
        uint256 id = _pickToken(tokenSeed, 0);
        if (id == 0) return;
        MToken storage tk = _tokens[id];
        address from = tk.owner;
        address to = _otherActor(toSeed, from);
        if (!_call(from, 0, abi.encodeWithSignature("transferFrom(address,address,uint256)", from, to, id))) return;
        tk.owner = to;
        tk.listSeller = address(0);
        tk.offered = false; // a transfer clears the listing and the licence terms
        nTransfers++;
    }

    // ================================================================== licences

    /// Offer licences (one time in eight: stop offering, price 0).
    function setLicenseTerms(uint256 tokenSeed, uint256 priceSeed) public {
        if (paused) return;
        uint256 id = _pickToken(tokenSeed, 0);
        if (id != 0) _setTerms(id, priceSeed % 8 == 0 ? 0 : _amount(priceSeed >> 3), _assets[(priceSeed >> 1) % 2]);
    }

    /// Buys a licence on offer (or, fuzzy, on any token at its last terms: it must revert
    /// unless on offer).
    function buyLicense(uint256 tokenSeed, uint256 buyerSeed) public {
        if (paused) return;
        uint256 id = _fuzzy(tokenSeed) ? _randomToken(tokenSeed) : _pickToken(tokenSeed, 2);
        if (id != 0) _buyLicense(id, buyerSeed);
    }

    /// The seller at purchase time delivers a fresh key; one time in eight it replays its own
    /// last key (must revert), one in eight it reuses the last key anyone delivered (must revert
    /// only if it is its own).
    function deliverKey(uint256 licSeed, uint256 seed) public {
        (uint256 id,) = _pickLicense(licSeed, 1);
        if (id != 0) _deliver(id, seed);
    }

    /// Anyone refunds an undelivered licence; half the time after waiting out its deadline,
    /// otherwise the model expects a revert unless the deadline has passed anyway.
    function refundLicense(uint256 licSeed, uint256 seed) public {
        (uint256 id, bool fuzzy) = _pickLicense(licSeed, 2);
        if (id != 0) _refund(id, seed, fuzzy);
    }

    /// The buyer of a delivered licence rates it, once; scores outside 1..5 must revert.
    function rate(uint256 licSeed, uint256 scoreSeed) public {
        (uint256 id,) = _pickLicense(licSeed, 3);
        if (id == 0) return;
        MLicense storage l = _lics[id];
        uint8 score = uint8(scoreSeed % 7); // 0 and 6 are invalid
        bool expectOk = l.state == L_DELIVERED && !l.rated && score >= 1 && score <= 5;
        bytes memory data = abi.encodeCall(PromptMarketplace.rate, (id, score, "bafyreview"));
        if (!_callExpect(l.buyer, 0, data, expectOk) || !expectOk) return;
        l.rated = true;
        nRated++;
    }

    /// Takes a random token or licence one natural step further: deliver or refund a pending
    /// licence, buy a listed token, buy a licence on offer, or list/offer an idle token.
    function advance(uint256 seed, uint256 seed2) public {
        uint256 r = seed % 4;
        if (r == 0) {
            (uint256 lic,) = _pickLicense(seed >> 2, 1);
            if (lic != 0) {
                if ((seed2 >> 1) % 4 == 0) _refund(lic, seed2, false);
                else _deliver(lic, seed2 | 2);
                return;
            }
        }
        if (paused) return;
        uint256 id = _pickToken(seed >> 2, r == 1 ? 1 : 2);
        if (id != 0) {
            if (r == 1) _buy(id, seed2);
            else _buyLicense(id, seed2);
        } else if ((id = _pickToken(seed >> 2, 0)) != 0) {
            if (seed2 % 2 == 0) _list(id, _assets[(seed2 >> 1) % 2], _amount(seed2 >> 2));
            else _setTerms(id, _amount(seed2 >> 2), _assets[(seed2 >> 1) % 2]);
        }
    }

    // ================================================================== money out, time, admin

    /// Withdraws for the first account (from a random start) that is owed something.
    function withdraw(uint256 accountSeed) public {
        uint256 n = _accounts.length * 2;
        for (uint256 k = 0; k < n; k++) {
            uint256 c = (accountSeed % n + k) % n;
            address a = _accounts[c / 2];
            address asset = _assets[c % 2];
            uint256 amount = ghostOwed[a][asset];
            if (amount == 0) continue;
            uint256 before = _balanceOf(a, asset);
            if (!_call(a, 0, abi.encodeCall(pm.withdraw, (asset)))) return;
            // (owed[a] itself is covered by the totalOwed == model check)
            if (_balanceOf(a, asset) - before != amount) _t.owedMismatches++;
            ghostOwed[a][asset] = 0;
            uint256 i = asset == NATIVE ? 0 : 1;
            _t.owedSum[i] -= amount;
            _t.withdrawn[i] += amount;
            nWithdrawals++;
            return;
        }
    }

    function warp(uint256 secondsSeed) public {
        _warpTo(block.timestamp + bound(secondsSeed, 1 minutes, 12 hours));
    }

    /// Pause (rarely), unpause (mostly), move the treasury or change the delivery window (which
    /// must not move the deadline of a licence already bought).
    function adminAction(uint256 seed) public {
        uint256 op = seed % 8;
        if (op == 0) {
            if (!paused && _call(admin, 0, abi.encodeCall(pm.pause, ()))) paused = true;
        } else if (op <= 4) {
            if (paused && _call(admin, 0, abi.encodeCall(pm.unpause, ()))) paused = false;
        } else if (op <= 6) {
            address next = treasury == _treasuries[0] ? _treasuries[1] : _treasuries[0];
            if (_call(admin, 0, abi.encodeCall(pm.setTreasury, (next)))) treasury = next;
        } else {
            uint64 w = uint64(bound(seed >> 3, 1 hours, 3 days));
            if (_call(admin, 0, abi.encodeCall(PromptMarketplace.setDeliveryWindow, (w)))) deliveryWindow = w;
        }
    }

    /// Called once from setUp (not a fuzz target): four prompts by two creators, two listed
    /// (ETH and token), three offering licences, and two licences pending, so every run starts
    /// with something to buy, deliver and refund.
    function seedMarket() external {
        mint(0, 1); // royalty 25%
        mint(1, 2 | (500 << 2)); // 5%
        mint(0, 0); // none
        mint(1, 3 | (1234 << 2)); // 12.34%
        _list(1, NATIVE, 2 ether);
        _list(2, address(token), 3 ether);
        _setTerms(2, 1 ether, NATIVE);
        _setTerms(3, 2 ether, address(token));
        _setTerms(4, 777, NATIVE);
        _buyLicense(2, 0);
        _buyLicense(3, 1);
    }

    // ================================================================== single transitions

    function _list(uint256 id, address asset, uint256 price) internal {
        MToken storage tk = _tokens[id];
        if (!_call(tk.owner, 0, abi.encodeCall(PromptMarketplace.list, (id, asset, price)))) return;
        tk.listSeller = tk.owner;
        tk.listAsset = asset;
        tk.listPrice = price;
        nListed++;
    }

    function _setTerms(uint256 id, uint256 price, address asset) internal {
        MToken storage tk = _tokens[id];
        if (!_call(tk.owner, 0, abi.encodeCall(PromptMarketplace.setLicenseTerms, (id, asset, price)))) return;
        tk.offered = price != 0;
        tk.termsAsset = asset;
        tk.termsPrice = price;
        nTermsSet++;
    }

    /// Buys token `id` at its model listing; unlisted (a fuzzy pick), the call must revert.
    function _buy(uint256 id, uint256 buyerSeed) internal {
        MToken storage tk = _tokens[id];
        address seller = tk.listSeller;
        address buyer = _otherActor(buyerSeed, tk.owner);
        address asset = tk.listAsset;
        uint256 price = tk.listPrice;
        bool expectOk = seller != address(0);
        bytes memory data = abi.encodeCall(PromptMarketplace.buy, (id, price));
        vm.recordLogs();
        if (!_callExpect(buyer, asset == NATIVE ? price : 0, data, expectOk) || !expectOk) return;
        _consumeLogs();
        _checkSale(tk, seller, asset, price);
        if (pm.ownerOf(id) != buyer) _t.ownershipMismatches++;
        tk.owner = buyer;
        tk.listSeller = address(0);
        tk.offered = false; // a sale clears the licence terms
    }

    /// Measures what a sale credited against the model and the PromptSold event, then applies
    /// the model: fee 3% rounded up, royalty floor(price * bps), the rest to the seller.
    function _checkSale(MToken storage tk, address seller, address asset, uint256 price) internal {
        uint256 fee = _fee(price);
        uint256 royalty = price * tk.royaltyBps / BPS;
        address creator = tk.creator;
        uint256 dTreasury = _sub(pm.owed(treasury, asset), ghostOwed[treasury][asset]);
        uint256 dSeller = _sub(pm.owed(seller, asset), ghostOwed[seller][asset]);
        uint256 dCreator = creator == seller ? 0 : _sub(pm.owed(creator, asset), ghostOwed[creator][asset]);
        bool bad = dTreasury != fee || dSeller + dCreator != price - fee || (creator != seller && dCreator != royalty);
        bad = bad || !_evSeen || _evProceeds != price - fee - royalty || _evRoyalty != royalty || _evFee != fee
            || _evReceiver != creator;
        if (bad) _t.payoutMismatches++;
        _t.sales++;
        _t.sumSalePrice += price;
        _t.sumSaleSplit += dSeller + dCreator + dTreasury;
        _t.deposited[asset == NATIVE ? 0 : 1] += price;
        _creditModel(treasury, asset, fee);
        _creditModel(creator, asset, royalty);
        _creditModel(seller, asset, price - fee - royalty);
    }

    /// Buys a licence on token `id` at its model terms. Not on offer (a fuzzy pick: never
    /// offered, offer withdrawn, or terms cleared by a transfer or sale), the call at the last
    /// terms must revert.
    function _buyLicense(uint256 id, uint256 buyerSeed) internal {
        MToken storage tk = _tokens[id];
        address buyer = _otherActor(buyerSeed, tk.owner);
        address asset = tk.termsAsset;
        uint256 price = tk.termsPrice;
        bool expectOk = tk.offered;
        bytes memory data = abi.encodeCall(PromptMarketplace.buyLicense, (id, price));
        (bool ok, bytes memory ret) = _callRet(buyer, asset == NATIVE ? price : 0, data, expectOk);
        if (!ok || !expectOk) return;
        uint256 lid = ++licenseCount;
        if (abi.decode(ret, (uint256)) != lid) _t.divergences++; // ids are sequential
        MLicense storage l = _lics[lid];
        l.tokenId = uint96(id);
        l.buyer = buyer;
        l.seller = tk.owner;
        l.asset = asset;
        l.price = uint128(price);
        l.deadline = uint64(block.timestamp) + deliveryWindow;
        l.state = L_PENDING;
        uint256 i = asset == NATIVE ? 0 : 1;
        _t.escrowed[i] += price;
        _t.deposited[i] += price;
        nLicensesBought++;
    }

    function _deliver(uint256 id, uint256 seed) internal {
        MLicense storage l = _lics[id];
        uint256 r = seed % 8;
        bytes memory key = r == 0 && _lastKeyOf[l.seller].length != 0
            ? _lastKeyOf[l.seller]
            : r == 1 && _lastKey.length != 0 ? _lastKey : abi.encode("encrypted key", id, ++_nonce);
        bytes32 deliveryHash = keccak256(abi.encode(l.seller, key));
        bool expectOk = !_deliveryUsed[deliveryHash] && l.state == L_PENDING && block.timestamp <= l.deadline;
        vm.recordLogs();
        bytes memory data = abi.encodeCall(PromptMarketplace.deliverKey, (id, key));
        if (!_callExpect(l.seller, 0, data, expectOk) || !expectOk) return;
        _consumeLogs();
        _lastKey = key;
        _lastKeyOf[l.seller] = key;
        _deliveryUsed[deliveryHash] = true;
        l.keyHash = deliveryHash;

        uint256 price = l.price;
        uint256 fee = _fee(price);
        uint256 dSeller = _sub(pm.owed(l.seller, l.asset), ghostOwed[l.seller][l.asset]);
        uint256 dTreasury = _sub(pm.owed(treasury, l.asset), ghostOwed[treasury][l.asset]);
        uint256 dBuyer = _sub(pm.owed(l.buyer, l.asset), ghostOwed[l.buyer][l.asset]);
        bool bad = dSeller != price - fee || dTreasury != fee || dBuyer != 0;
        bad = bad || !_evSeen || _evProceeds != dSeller || _evFee != dTreasury;
        if (bad) _t.payoutMismatches++;
        l.settleCalls++;
        l.paid += uint128(dSeller + dTreasury + dBuyer);
        _t.sumDeliveredPrice += price;
        _t.sumDeliveredSplit += dSeller + dTreasury;

        uint256 i = l.asset == NATIVE ? 0 : 1;
        _t.escrowed[i] = _sub(_t.escrowed[i], price);
        _creditModel(treasury, l.asset, fee);
        _creditModel(l.seller, l.asset, price - fee);
        l.state = L_DELIVERED;
        nDelivered++;

        // At most once: delivering again, even a fresh key, must now revert.
        data = abi.encodeCall(PromptMarketplace.deliverKey, (id, abi.encode("encrypted key", id, ++_nonce)));
        if (_callExpect(l.seller, 0, data, false)) l.settleCalls++;
    }

    function _refund(uint256 id, uint256 seed, bool fuzzy) internal {
        MLicense storage l = _lics[id];
        if (!fuzzy && (seed >> 1) % 2 == 0) _warpTo(uint256(l.deadline) + 1);
        bool expectOk = l.state == L_PENDING && block.timestamp > l.deadline;
        address caller = _accounts[(seed >> 2) % 6];
        vm.recordLogs();
        bytes memory data = abi.encodeCall(PromptMarketplace.refundLicense, (id));
        if (!_callExpect(caller, 0, data, expectOk) || !expectOk) return;
        _consumeLogs();

        uint256 price = l.price;
        uint256 dBuyer = _sub(pm.owed(l.buyer, l.asset), ghostOwed[l.buyer][l.asset]);
        uint256 dSeller = _sub(pm.owed(l.seller, l.asset), ghostOwed[l.seller][l.asset]);
        uint256 dTreasury = _sub(pm.owed(treasury, l.asset), ghostOwed[treasury][l.asset]);
        bool bad = dBuyer != price || dSeller != 0 || dTreasury != 0 || !_evSeen || _evRefund != dBuyer;
        if (bad) _t.payoutMismatches++;
        l.settleCalls++;
        l.paid += uint128(dBuyer + dSeller + dTreasury);
        _t.sumRefundedPrice += price;
        _t.sumRefunded += dBuyer;

        uint256 i = l.asset == NATIVE ? 0 : 1;
        _t.escrowed[i] = _sub(_t.escrowed[i], price);
        _creditModel(l.buyer, l.asset, price);
        l.state = L_REFUNDED;
        nRefunded++;

        // At most once: refunding again must now revert.
        if (_callExpect(caller, 0, data, false)) l.settleCalls++;
    }

    // ================================================================== logs

    function _consumeLogs() internal {
        _evSeen = false;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; i++) {
            Vm.Log memory l = logs[i];
            if (l.emitter != address(pm) || l.topics.length < 2) continue;
            bytes32 t = l.topics[0];
            if (t == PromptMarketplace.PromptSold.selector) {
                (,, _evProceeds, _evRoyalty, _evReceiver, _evFee) =
                    abi.decode(l.data, (address, uint256, uint256, uint256, address, uint256));
                _evSeen = true;
            } else if (t == PromptMarketplace.KeyDelivered.selector) {
                _lics[uint256(l.topics[1])].deliveredEvents++;
                (,, _evProceeds, _evFee) = abi.decode(l.data, (address, bytes, uint256, uint256));
                _evSeen = true;
            } else if (t == PromptMarketplace.LicenseRefunded.selector) {
                _lics[uint256(l.topics[1])].refundedEvents++;
                _evRefund = abi.decode(l.data, (uint256));
                _evSeen = true;
            }
        }
    }

    // ================================================================== calls

    function _call(address caller, uint256 value, bytes memory data) internal returns (bool) {
        return _callExpect(caller, value, data, true);
    }

    /// Calls `pm` as `caller`; an outcome other than the model's prediction is a divergence.
    function _callExpect(address caller, uint256 value, bytes memory data, bool expectOk) internal returns (bool ok) {
        (ok,) = _callRet(caller, value, data, expectOk);
    }

    function _callRet(address caller, uint256 value, bytes memory data, bool expectOk)
        internal
        returns (bool ok, bytes memory ret)
    {
        vm.prank(caller);
        (ok, ret) = address(pm).call{value: value}(data);
        if (ok != expectOk) _t.divergences++;
        else if (!ok) nExpectedReverts++;
    }

    // ================================================================== picking

    function _fuzzy(uint256 seed) internal pure returns (bool) {
        return uint256(keccak256(abi.encode(seed))) % 8 == 0;
    }

    function _randomToken(uint256 seed) internal view returns (uint256) {
        return tokenCount == 0 ? 0 : seed % tokenCount + 1;
    }

    /// From a random start, the first token that is: 0 any, 1 listed, 2 offering licences.
    function _pickToken(uint256 seed, uint8 filter) internal view returns (uint256) {
        uint256 n = tokenCount;
        if (n == 0) return 0;
        uint256 start = seed % n;
        for (uint256 k = 0; k < n; k++) {
            uint256 id = (start + k) % n + 1;
            MToken storage tk = _tokens[id];
            if (filter == 0 || filter == 1 && tk.listSeller != address(0) || filter == 2 && tk.offered) {
                return id;
            }
        }
        return 0;
    }

    /// From a random start, the first licence that is: 1 pending within its deadline, 2 pending,
    /// 3 delivered and unrated. One call in eight returns the random id as is, flagged `fuzzy`.
    function _pickLicense(uint256 seed, uint8 filter) internal view returns (uint256 id, bool fuzzy) {
        uint256 n = licenseCount;
        if (n == 0) return (0, false);
        uint256 start = seed % n;
        if (_fuzzy(seed)) return (start + 1, true);
        for (uint256 k = 0; k < n; k++) {
            uint256 cand = (start + k) % n + 1;
            MLicense storage l = _lics[cand];
            uint8 s = l.state;
            if (
                filter == 1 && s == L_PENDING && block.timestamp <= l.deadline || filter == 2 && s == L_PENDING
                    || filter == 3 && s == L_DELIVERED && !l.rated
            ) return (cand, false);
        }
        return (0, false);
    }

    function _otherActor(uint256 seed, address not) internal view returns (address a) {
        a = _actors[seed % 6];
        if (a == not) a = _actors[(seed % 6 + 1 + (seed >> 8) % 5) % 6];
    }

    // ================================================================== helpers

    function _creditModel(address account, address asset, uint256 amount) internal {
        ghostOwed[account][asset] += amount;
        _t.owedSum[asset == NATIVE ? 0 : 1] += amount;
    }

    function _warpTo(uint256 t) internal {
        if (t > block.timestamp) vm.warp(t);
    }

    /// Mostly ordinary amounts; one in four is tiny, to exercise the fee's and royalty's rounding.
    function _amount(uint256 seed) internal pure returns (uint256) {
        return seed % 4 == 0 ? bound(seed >> 2, 1, 1_000) : bound(seed >> 2, 1_001, 50 ether);
    }

    /// 3% rounded up, computed independently of PaymentVault.feeOf.
    function _fee(uint256 amount) internal pure returns (uint256) {
        return (amount * 300 + BPS - 1) / BPS;
    }

    function _sub(uint256 a, uint256 b) internal returns (uint256) {
        if (b > a) {
            _t.modelUnderflows++;
            return 0;
        }
        return a - b;
    }

    function _balanceOf(address a, address asset) internal view returns (uint256) {
        return asset == NATIVE ? a.balance : token.balanceOf(a);
    }

    function _str(uint256 i) internal pure returns (string memory) {
        return string(abi.encodePacked(bytes1(uint8(48 + i))));
    }

    // ================================================================== views for the invariants

    function totals() external view returns (Totals memory) {
        return _t;
    }

    function license(uint256 id) external view returns (MLicense memory) {
        return _lics[id];
    }

    /// What invariant_Solvent needs (each invariant runs after every call: read little).
    function solvencyTotals()
        external
        view
        returns (
            uint256[2] memory escrowed,
            uint256[2] memory owedSum,
            uint256[2] memory deposited,
            uint256[2] memory withdrawn,
            uint256 owedMismatches,
            uint256 modelUnderflows
        )
    {
        return (_t.escrowed, _t.owedSum, _t.deposited, _t.withdrawn, _t.owedMismatches, _t.modelUnderflows);
    }

    /// Per licence: refunded or delivered, never both, at most once (settling calls and
    /// events); never more paid out than its price; a settled licence released exactly its
    /// price. Returns the first failing licence id and a reason.
    function checkLicenses() external view returns (uint256 badLicense, string memory reason) {
        for (uint256 id = 1; id <= licenseCount; id++) {
            MLicense storage l = _lics[id];
            if (l.settleCalls > 1) return (id, "licence settled twice");
            if (uint256(l.deliveredEvents) + l.refundedEvents > 1) {
                return (id, "licence delivered/refunded twice, or both");
            }
            if (l.paid > l.price) return (id, "licence paid out more than its price");
            if (l.state == L_PENDING) {
                if (l.settleCalls != 0 || l.deliveredEvents != 0 || l.refundedEvents != 0) {
                    return (id, "pending licence has a settlement");
                }
            } else {
                if (l.settleCalls != 1) return (id, "settled licence without exactly one settlement");
                if (l.paid != l.price) return (id, "settled licence did not release exactly its price");
                if (l.state == L_DELIVERED ? l.deliveredEvents != 1 : l.refundedEvents != 1) {
                    return (id, "settled licence without its settlement event");
                }
            }
        }
        return (0, "");
    }

    /// The counters invariant_TerminalStatesFinal needs, and the licences the model has
    /// delivered or refunded with that state.
    function settledLicenses()
        external
        view
        returns (uint256 divergences, uint256 ownershipMismatches, uint256[] memory ids, uint8[] memory st)
    {
        uint256 n;
        for (uint256 id = 1; id <= licenseCount; id++) {
            if (_lics[id].state != L_PENDING) n++;
        }
        ids = new uint256[](n);
        st = new uint8[](n);
        n = 0;
        for (uint256 id = 1; id <= licenseCount; id++) {
            uint8 s = _lics[id].state;
            if (s != L_PENDING) (ids[n], st[n++]) = (id, s);
        }
        return (_t.divergences, _t.ownershipMismatches, ids, st);
    }

    /// What invariant_PayoutPlusFeeEqualsPrice needs. Each sale and licence settlement was
    /// checked when it happened (payoutMismatches); the sums re-check them in aggregate.
    function priceTotals() external view returns (uint256 payoutMismatches, uint256[6] memory sums) {
        return (
            _t.payoutMismatches,
            [
                _t.sumSalePrice,
                _t.sumSaleSplit,
                _t.sumDeliveredPrice,
                _t.sumDeliveredSplit,
                _t.sumRefundedPrice,
                _t.sumRefunded
            ]
        );
    }
}
