// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {OperatorRegistry} from "./OperatorRegistry.sol";
import {SettlementRules} from "./SettlementRules.sol";
import {TaskManager} from "./TaskManager.sol";

/// @title TaskManagerGovernance
/// @notice The TaskManager's governed settlement parameters: their storage, their bounds (which
/// hold whoever proposes a change) and setParameter's handling of them.
/// @dev A linked library with one external function, run by TaskManager.setParameter through
/// DELEGATECALL on the TaskManager's own storage, like BatchSettlement. Why not in TaskManager:
/// EIP-170 caps its runtime code at 24,576 bytes, and the room setParameter's eight cases took is
/// wanted for settlement paths; governance is rare, so the DELEGATECALL costs nothing that matters.
/// Reverts with TaskManager's errors and emits TaskManager's ParameterChanged (the code runs in its
/// context), so the TaskManager's ABI describes setParameter completely. The bound checks are
/// internal: the TaskManager's constructor inlines the same ones into its creation code. It also
/// computes the TaskManager's reputation views (reputation, reputationOf): read off-chain, rarely,
/// and their decoding of the registry's operator record took 1.3 KB the zk tier needed.
library TaskManagerGovernance {
    /// @dev The governed parameters, in the two slots every certificate reads, in the order (and so
    /// at the slots and offsets) the TaskManager's separate state variables had before this struct.
    struct Parameters {
        address treasury;
        uint16 quorumBps;
        uint16 protocolFeeBps;
        uint64 maxEpochAge;
        uint128 minTaskFee;
        uint64 maxTaskLife;
        uint64 settlementWindow;
    }

    /// @dev Lowest network quorum: two thirds of the stake, the BFT bound under which two
    /// conflicting certificates of one epoch could both reach quorum.
    uint16 internal constant MIN_QUORUM_BPS = 6667;
    /// @dev Highest protocol fee (20 % of what is left after the model owner's fee): the signers,
    /// who secure the network, keep most of every fee.
    uint16 internal constant MAX_PROTOCOL_FEE_BPS = 2000;
    /// @dev Shortest maxTaskLife: the node's longest task TTL (600 s), so every task a node
    /// accepts can still settle.
    uint64 internal constant MIN_TASK_LIFE = 10 minutes;
    /// @dev Longest maxTaskLife and settlementWindow: each lengthens the withdrawal delay deposits
    /// need (withdrawalDelay > maxTaskLife + settlementWindow).
    uint64 internal constant MAX_TASK_WINDOW = 1 days;
    /// @dev Shortest settlementWindow: an aggregator needs a few blocks to post a certificate made
    /// just before the deadline.
    uint64 internal constant MIN_SETTLEMENT_WINDOW = 5 minutes;
    /// @dev Longest withdrawalDelay: deposits must always be able to leave.
    uint64 internal constant MAX_WITHDRAWAL_DELAY = 30 days;

    /// @notice Sets parameter `name` of `p` (or the withdrawal delay, which PaymentVault keeps: it
    /// comes in as `withdrawalDelay` and the new value goes back) to `value` within its bounds,
    /// and emits ParameterChanged: see TaskManager.setParameter. The caller checked the owner.
    function setParameter(Parameters storage p, OperatorRegistry registry, uint64 withdrawalDelay, bytes32 name, uint256 value)
        external
        returns (uint64)
    {
        uint256 old;
        if (name == "quorumBps") {
            checkQuorumBps(value);
            old = p.quorumBps;
            p.quorumBps = uint16(value);
        } else if (name == "maxEpochAge") {
            if (value == 0 || value > type(uint64).max) revert TaskManager.ParameterOutOfBounds(name, value, 1, type(uint64).max);
            checkEpochAge(registry, uint64(value));
            old = p.maxEpochAge;
            p.maxEpochAge = uint64(value);
        } else if (name == "treasury") {
            if (value > type(uint160).max) revert TaskManager.ParameterOutOfBounds(name, value, 1, type(uint160).max);
            if (value == 0) revert TaskManager.ZeroAddress();
            old = uint160(p.treasury);
            p.treasury = address(uint160(value));
        } else if (name == "protocolFeeBps") {
            checkProtocolFeeBps(value);
            old = p.protocolFeeBps;
            p.protocolFeeBps = uint16(value);
        } else if (name == "minTaskFee") {
            if (value > type(uint128).max) revert TaskManager.ParameterOutOfBounds(name, value, 0, type(uint128).max);
            old = p.minTaskFee;
            p.minTaskFee = uint128(value);
        } else if (name == "maxTaskLife") {
            if (value < MIN_TASK_LIFE || value > MAX_TASK_WINDOW) {
                revert TaskManager.ParameterOutOfBounds(name, value, MIN_TASK_LIFE, MAX_TASK_WINDOW);
            }
            checkWithdrawalDelay(withdrawalDelay, uint64(value), p.settlementWindow);
            old = p.maxTaskLife;
            p.maxTaskLife = uint64(value);
        } else if (name == "settlementWindow") {
            if (value < MIN_SETTLEMENT_WINDOW || value > MAX_TASK_WINDOW) {
                revert TaskManager.ParameterOutOfBounds(name, value, MIN_SETTLEMENT_WINDOW, MAX_TASK_WINDOW);
            }
            checkWithdrawalDelay(withdrawalDelay, p.maxTaskLife, uint64(value));
            old = p.settlementWindow;
            p.settlementWindow = uint64(value);
        } else if (name == "withdrawalDelay") {
            if (value > MAX_WITHDRAWAL_DELAY) revert TaskManager.ParameterOutOfBounds(name, value, 0, MAX_WITHDRAWAL_DELAY);
            checkWithdrawalDelay(uint64(value), p.maxTaskLife, p.settlementWindow);
            old = withdrawalDelay;
            withdrawalDelay = uint64(value);
        } else {
            revert TaskManager.UnknownParameter(name);
        }
        emit TaskManager.ParameterChanged(name, old, value);
        return withdrawalDelay;
    }

    /// @dev A quorum in basis points, at least two thirds.
    function checkQuorumBps(uint256 value) internal pure {
        if (value > SettlementRules.BPS_DENOMINATOR) revert TaskManager.InvalidBps(value);
        if (value < MIN_QUORUM_BPS) revert TaskManager.QuorumBelowFloor(value, MIN_QUORUM_BPS);
    }

    function checkProtocolFeeBps(uint256 value) internal pure {
        if (value > MAX_PROTOCOL_FEE_BPS) revert TaskManager.ProtocolFeeAboveCap(value, MAX_PROTOCOL_FEE_BPS);
    }

    /// @dev A deposit must not be withdrawable before a task it must pay is settled.
    function checkWithdrawalDelay(uint64 delay, uint64 taskLife, uint64 window) internal pure {
        uint256 minimumDelay = uint256(taskLife) + window;
        if (delay <= minimumDelay) revert TaskManager.WithdrawalDelayTooShort(delay, minimumDelay + 1);
    }

    /// @dev No certificate may be accepted for an epoch whose exiting stake the registry may already have paid out.
    function checkEpochAge(OperatorRegistry registry, uint64 age) internal view {
        uint64 registryMax = registry.maxCertificateAge();
        if (age > registryMax) revert TaskManager.EpochAgeExceedsRegistry(age, registryMax);
    }

    /// @notice TaskManager.reputation: certificates `operator` signed and missed in epochs
    /// fromEpoch..toEpoch (inclusive) and its slashings over its life.
    function reputation(
        mapping(uint64 => TaskManager.EpochRewards) storage epochRewards,
        mapping(uint64 => mapping(address => TaskManager.Missed)) storage missed,
        OperatorRegistry registry,
        address operator,
        uint64 fromEpoch,
        uint64 toEpoch
    ) external view returns (uint64 signedCount, uint64 missedCount, uint32 slashings) {
        if (fromEpoch == 0 || fromEpoch > toEpoch) revert TaskManager.InvalidEpochRange(fromEpoch, toEpoch);
        (signedCount, missedCount) = _tally(epochRewards, missed, operator, fromEpoch, toEpoch);
        slashings = registry.operators(operator).slashings;
    }

    /// @notice TaskManager.reputationOf: reputation() over the epochs of the operator's current
    /// registration that have started (from the first epoch that counted it to the last one, or
    /// the current one).
    function reputationOf(
        mapping(uint64 => TaskManager.EpochRewards) storage epochRewards,
        mapping(uint64 => mapping(address => TaskManager.Missed)) storage missed,
        OperatorRegistry registry,
        address operator
    ) external view returns (uint64 signedCount, uint64 missedCount, uint32 slashings) {
        OperatorRegistry.Operator memory op = registry.operators(operator);
        slashings = op.slashings;
        if (!op.registered) return (0, 0, slashings);
        uint64 last = registry.currentEpoch();
        if (op.exitEpoch != 0 && op.exitEpoch - 1 < last) last = op.exitEpoch - 1;
        if (op.firstEpoch == 0 || op.firstEpoch > last) return (0, 0, slashings);
        (signedCount, missedCount) = _tally(epochRewards, missed, operator, op.firstEpoch, last);
    }

    function _tally(
        mapping(uint64 => TaskManager.EpochRewards) storage epochRewards,
        mapping(uint64 => mapping(address => TaskManager.Missed)) storage missed,
        address operator,
        uint64 fromEpoch,
        uint64 toEpoch
    ) private view returns (uint64 signedCount, uint64 missedCount) {
        for (uint64 e = fromEpoch; e <= toEpoch; ++e) {
            uint64 certificates = epochRewards[e].certificates;
            uint64 m = missed[e][operator].count;
            signedCount += certificates - m;
            missedCount += m;
        }
    }
}
