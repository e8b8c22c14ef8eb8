// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IValidationRegistry} from "./IValidationRegistry.sol";
import {TaskManager} from "./TaskManager.sol";

/// @title SettlementRules
/// @notice What single certificates (TaskManager) and batches (BatchSettlement) settle by alike:
/// the constants, the deadline rule and the ERC-8004 response, defined once.
/// @dev Internal only, so each caller inlines the code: a single certificate pays no DELEGATECALL
/// for a deadline check or a response (an external call to the library would add a cold account
/// access, 2,600 gas, to every certificate that answers an ERC-8004 request). TaskManager exposes
/// the public ones under the same names (its ABI is unchanged).
library SettlementRules {
    uint256 internal constant BPS_DENOMINATOR = 10_000;
    /// @dev Task deadlines are unix milliseconds (the wire's unit); block timestamps are seconds.
    uint256 internal constant MS_PER_SECOND = 1000;
    /// @dev Fixed-point scale of the reward-per-stake index: with stakes in ether (1e18 wei) a
    /// certificate's increment keeps 9 more digits than its signers' share, so the rounding lost per
    /// claim is below one wei per 1e9 wei of stake, and the uint192 index holds 6e57: far beyond
    /// any sum of fees over stakes.
    uint256 internal constant REWARD_SCALE = 1e27;
    /// @dev EIP-712 type of a tab voucher; protocols/wire/voucher.ts spells the same type.
    bytes32 internal constant VOUCHER_TYPEHASH =
        keccak256("TabVoucher(address requester,address taskManager,uint256 cumulative,uint64 sequence)");
    /// @dev Tasks whose nonce is below this are tab tasks: the nonce is their sequence in the
    /// requester's tab, and they settle only in a batch (single tasks have nonces at or above it,
    /// and settle only singly), so no task settles twice. 2**40 sequences outlast any requester.
    uint64 internal constant TAB_SEQUENCE_LIMIT = 2 ** 40;
    /// @dev ERC-8004 response a certified task gets (0..100 scale: fully validated).
    uint8 internal constant VALIDATION_RESPONSE = 100;
    /// @dev Gas the validation registry may use per response: enough for its writes and event,
    /// small enough that a registry that burns gas cannot make settlement unaffordable.
    uint256 internal constant VALIDATION_GAS_LIMIT = 300_000;

    /// @dev A task's deadline (unix ms) must not have passed by more than the settlement window,
    /// nor lie more than maxTaskLife ahead (both seconds).
    function checkDeadline(uint64 deadline, uint64 settlementWindow, uint64 maxTaskLife) internal view {
        uint256 nowMs = block.timestamp * MS_PER_SECOND;
        if (uint256(deadline) + uint256(settlementWindow) * MS_PER_SECOND < nowMs) revert TaskManager.TaskExpired(deadline, nowMs);
        uint256 latest = nowMs + uint256(maxTaskLife) * MS_PER_SECOND;
        if (deadline > latest) revert TaskManager.DeadlineTooFar(deadline, latest);
    }

    /// @dev ERC-8004: the TaskManager, as validator, answers a task's request. Never blocks settlement.
    function respond(IValidationRegistry validationRegistry, bytes32 taskId, bytes32 requestHash, bytes32 resultHash) internal {
        string memory uri = string.concat("poi://task/", Strings.toHexString(uint256(taskId), 32));
        try validationRegistry.validationResponse{gas: VALIDATION_GAS_LIMIT}(
            requestHash, VALIDATION_RESPONSE, uri, resultHash, "poi-qc"
        ) {} catch (bytes memory reason) {
            emit TaskManager.ValidationResponseFailed(taskId, requestHash, reason);
        }
    }
}
