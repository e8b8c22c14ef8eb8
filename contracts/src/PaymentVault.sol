// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title PaymentVault
/// @notice Requesters' deposits in the network's one payment asset (ETH when `asset` is the zero
/// address, else an ERC-20), the credits of model owners and the treasury, and the transfers out.
/// A withdrawal is requested first and unlocks `withdrawalDelay` later; until it is paid the whole
/// balance stays chargeable, so a task already being certified is still paid (nodes count only
/// availableBalance: balance minus the pending withdrawal). Nothing is ever pushed: owners and the
/// treasury pull their credits (withdrawCredit), operators their rewards (TaskManager.claimRewards).
/// @dev An abstract base the TaskManager inherits rather than a contract it calls: settling a
/// certificate debits a deposit and writes two credits, and as internal storage writes they cost
/// no cross-contract call (a cold CALL is 2,600 gas plus ABI encoding, twice per certificate) and
/// no access control between the two; the combined runtime code stays under the 24 KiB limit
/// (TaskManager's size is checked in test/payments.test.ts).
abstract contract PaymentVault is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @dev balance and pending amount share one slot (a certificate reads and writes only it);
    /// unlocksAt has a second slot that only requestWithdrawal and withdraw touch.
    struct Account {
        uint128 balance;
        uint128 pendingAmount;
        uint64 unlocksAt;
    }

    /// @notice The payment asset: address(0) = ETH, else an ERC-20.
    address public immutable asset;
    /// @notice Seconds between requestWithdrawal and the earliest withdraw (governed: the
    /// TaskManager's setParameter "withdrawalDelay"; a request keeps the unlock time it was given).
    uint64 public withdrawalDelay;

    mapping(address => Account) internal _accounts;
    /// @dev Model owners' and the treasury's earnings, withdrawn with withdrawCredit.
    mapping(address => uint256) internal _credits;
    /// @dev What accepted certificates could not charge a requester, summed (RequesterDefaulted;
    /// SettlementRules.charge debits deposits and records shortfalls).
    mapping(address => uint256) internal _shortfalls;

    event Deposited(address indexed account, uint256 amount, uint256 balance);
    /// @notice A new request replaces the previous one; amount 0 cancels.
    event WithdrawalRequested(address indexed account, uint256 amount, uint64 unlocksAt);
    event Withdrawn(address indexed account, uint256 amount, uint256 balance);
    event CreditWithdrawn(address indexed account, uint256 amount);
    /// @notice An accepted certificate charged `charged` of its `fee`; the rest (`shortfall`) is unpaid.
    event RequesterDefaulted(address indexed requester, bytes32 indexed taskId, uint256 fee, uint256 charged, uint256 shortfall);

    /// @notice ETH sent with an ERC-20 deposit, or msg.value ≠ amount for an ETH deposit.
    error WrongDepositValue(uint256 sent, uint256 amount);
    error ZeroAmount();
    error WithdrawalExceedsBalance(uint256 amount, uint256 balance);
    error NoPendingWithdrawal();
    error WithdrawalLocked(uint64 unlocksAt);
    error NoCredit();
    error EthTransferFailed();

    constructor(address asset_, uint64 withdrawalDelay_) {
        asset = asset_;
        withdrawalDelay = withdrawalDelay_;
    }

    /// @notice Adds `amount` to the caller's deposit: ETH as msg.value, or an ERC-20 pulled with
    /// transferFrom (approve first). A token that takes a fee on transfer credits what arrived.
    function deposit(uint256 amount) external payable nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 received = amount;
        if (asset == address(0)) {
            if (msg.value != amount) revert WrongDepositValue(msg.value, amount);
        } else {
            if (msg.value != 0) revert WrongDepositValue(msg.value, amount);
            IERC20 token = IERC20(asset);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), amount);
            received = token.balanceOf(address(this)) - before;
        }
        Account storage a = _accounts[msg.sender];
        uint256 balance = a.balance + received;
        a.balance = SafeCast.toUint128(balance);
        emit Deposited(msg.sender, received, balance);
    }

    /// @notice Asks to take `amount` out after withdrawalDelay; replaces any earlier request (0 cancels).
    /// The balance stays chargeable until withdraw pays it out.
    function requestWithdrawal(uint256 amount) external {
        Account storage a = _accounts[msg.sender];
        if (amount > a.balance) revert WithdrawalExceedsBalance(amount, a.balance);
        uint64 unlocksAt = amount == 0 ? 0 : uint64(block.timestamp) + withdrawalDelay;
        a.pendingAmount = uint128(amount);
        a.unlocksAt = unlocksAt;
        emit WithdrawalRequested(msg.sender, amount, unlocksAt);
    }

    /// @notice Pays the unlocked pending withdrawal, capped at the balance left after charges.
    function withdraw() external nonReentrant returns (uint256 amount) {
        Account storage a = _accounts[msg.sender];
        uint256 pending = a.pendingAmount;
        if (pending == 0) revert NoPendingWithdrawal();
        if (block.timestamp < a.unlocksAt) revert WithdrawalLocked(a.unlocksAt);
        uint256 balance = a.balance;
        amount = pending < balance ? pending : balance;
        balance -= amount;
        a.balance = uint128(balance);
        a.pendingAmount = 0;
        a.unlocksAt = 0;
        emit Withdrawn(msg.sender, amount, balance);
        _payOut(msg.sender, amount);
    }

    /// @notice Pays the caller's credit (model owner fees, treasury fees).
    function withdrawCredit() external nonReentrant returns (uint256 amount) {
        amount = _credits[msg.sender];
        if (amount == 0) revert NoCredit();
        _credits[msg.sender] = 0;
        emit CreditWithdrawn(msg.sender, amount);
        _payOut(msg.sender, amount);
    }

    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].balance;
    }

    function pendingWithdrawal(address account) external view returns (uint256 amount, uint64 unlocksAt) {
        Account storage a = _accounts[account];
        return (a.pendingAmount, a.unlocksAt);
    }

    /// @notice Balance minus the pending withdrawal: what nodes count when they admit tasks.
    function availableBalance(address account) external view returns (uint256) {
        Account storage a = _accounts[account];
        return a.pendingAmount >= a.balance ? 0 : a.balance - a.pendingAmount;
    }

    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @notice Total fees accepted certificates could not charge `requester` (0 = never defaulted).
    function shortfallOf(address requester) external view returns (uint256) {
        return _shortfalls[requester];
    }

    function _payOut(address to, uint256 amount) internal {
        if (amount == 0) return;
        if (asset == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert EthTransferFailed();
        } else {
            IERC20(asset).safeTransfer(to, amount);
        }
    }
}
