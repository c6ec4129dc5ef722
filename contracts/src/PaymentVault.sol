// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title PaymentVault
/// @notice Shared money handling for the AscendNet contracts: the payment-asset allow-list,
/// escrow bookkeeping, the 3% platform fee and pull payments.
/// @dev Every payout is credited to `owed[account][asset]` and taken out with {withdraw}; no
/// state transition ever pushes value. `address(0)` stands for native ETH and is always allowed.
/// Solvency, checked by the invariant tests: for every asset,
/// `balance(this) == totalEscrowed[asset] + totalOwed[asset]`.
abstract contract PaymentVault is AccessControl, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice The platform fee, in basis points of each settled amount: exactly 3%.
    uint256 public constant FEE_BPS = 300;
    uint256 internal constant _BPS = 10_000;
    /// @notice The asset id used for native ETH.
    address public constant NATIVE = address(0);

    /// @notice Where fees are credited. The admin can change it; fees already credited stay owed
    /// to the treasury that earned them.
    address public treasury;
    /// @notice ERC-20 tokens the admin has allowed as a payment asset.
    mapping(address asset => bool) public assetAllowed;
    /// @notice What each account can withdraw, per asset.
    mapping(address account => mapping(address asset => uint256)) public owed;
    /// @notice Value held for open obligations (escrows, stakes), per asset.
    mapping(address asset => uint256) public totalEscrowed;
    /// @notice Sum of `owed` over all accounts, per asset.
    mapping(address asset => uint256) public totalOwed;

    event TreasuryUpdated(address indexed previous, address indexed current);
    event AssetAllowanceSet(address indexed asset, bool allowed);
    /// @notice `amount` of `asset` became withdrawable by `account`.
    event Credited(address indexed account, address indexed asset, uint256 amount);
    /// @notice A fee of `amount` was charged on a settlement and credited to `treasury`.
    event FeeCharged(address indexed asset, address indexed treasury, uint256 amount);
    event Withdrawn(address indexed account, address indexed asset, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error AssetNotAllowed(address asset);
    /// @dev Native payments must send exactly the amount; ERC-20 payments must send no ETH.
    error WrongPaymentValue(uint256 expected, uint256 sent);
    /// @dev The token delivered a different amount than requested (fee-on-transfer tokens are
    /// not supported).
    error UnsupportedToken(address asset, uint256 expected, uint256 received);
    error NothingOwed(address account, address asset);
    error NativeTransferFailed(address to, uint256 amount);

    constructor(address admin, address treasury_) {
        if (admin == address(0) || treasury_ == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ARBITER_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        treasury = treasury_;
        emit TreasuryUpdated(address(0), treasury_);
    }

    // ------------------------------------------------------------------ admin

    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        address previous = treasury;
        treasury = treasury_;
        emit TreasuryUpdated(previous, treasury_);
    }

    /// @notice Allow or disallow an ERC-20 as a payment asset. Disallowing only blocks new
    /// escrows; everything already escrowed or owed in it can still settle and be withdrawn.
    function setAssetAllowed(address asset, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (asset == NATIVE) revert ZeroAddress();
        assetAllowed[asset] = allowed;
        emit AssetAllowanceSet(asset, allowed);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ------------------------------------------------------------------ views

    /// @notice The fee on a settled `amount`: 3%, rounded up so rounding favours the protocol.
    function feeOf(uint256 amount) public pure returns (uint256) {
        return Math.mulDiv(amount, FEE_BPS, _BPS, Math.Rounding.Ceil);
    }

    function isAllowedAsset(address asset) public view returns (bool) {
        return asset == NATIVE || assetAllowed[asset];
    }

    // ------------------------------------------------------------------ withdraw

    /// @notice Withdraw everything owed to the caller in `asset`. Never blocked by pausing.
    function withdraw(address asset) external nonReentrant {
        uint256 amount = owed[msg.sender][asset];
        if (amount == 0) revert NothingOwed(msg.sender, asset);
        owed[msg.sender][asset] = 0;
        totalOwed[asset] -= amount;
        emit Withdrawn(msg.sender, asset, amount);
        // Value only ever leaves the contract here, to the caller, for what it is owed.
        if (asset == NATIVE) {
            (bool ok,) = payable(msg.sender).call{value: amount}("");
            if (!ok) revert NativeTransferFailed(msg.sender, amount);
        } else {
            IERC20(asset).safeTransfer(msg.sender, amount);
        }
    }

    // ------------------------------------------------------------------ internals

    function _requireAllowed(address asset) internal view {
        if (!isAllowedAsset(asset)) revert AssetNotAllowed(asset);
    }

    /// @dev Takes `amount` of `asset` from the caller into escrow.
    function _collect(address asset, uint256 amount) internal {
        if (amount == 0) revert ZeroAmount();
        _requireAllowed(asset);
        if (asset == NATIVE) {
            if (msg.value != amount) revert WrongPaymentValue(amount, msg.value);
        } else {
            if (msg.value != 0) revert WrongPaymentValue(0, msg.value);
            IERC20 token = IERC20(asset);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), amount);
            uint256 received = token.balanceOf(address(this)) - before;
            if (received != amount) revert UnsupportedToken(asset, amount, received);
        }
        totalEscrowed[asset] += amount;
    }

    /// @dev Moves `amount` from escrow into `account`'s withdrawable balance.
    function _credit(address account, address asset, uint256 amount) internal {
        if (amount == 0) return;
        totalEscrowed[asset] -= amount;
        owed[account][asset] += amount;
        totalOwed[asset] += amount;
        emit Credited(account, asset, amount);
    }

    /// @dev Settles `amount` from escrow: the fee goes to the treasury, and the rest is
    /// returned for the caller to credit. `payout + fee == amount` always.
    function _chargeFee(address asset, uint256 amount) internal returns (uint256 payout, uint256 fee) {
        fee = feeOf(amount);
        // NOTE: ceil(amount * 3%) never exceeds amount, so this cannot underflow.
        payout = amount - fee;
        if (fee != 0) {
            address treasury_ = treasury;
            _credit(treasury_, asset, fee);
            emit FeeCharged(asset, treasury_, fee);
        }
    }
}
