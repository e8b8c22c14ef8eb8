// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IValidationRegistry} from "./IValidationRegistry.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {OperatorRegistry} from "./OperatorRegistry.sol";
import {PaymentVault} from "./PaymentVault.sol";
import {TaskManager} from "./TaskManager.sol";
import {TaskManagerGovernance} from "./TaskManagerGovernance.sol";

/// @title SettlementRules
/// @notice What single certificates (TaskManager), batches (BatchSettlement) and zk results
/// (ZkSettlement) settle by alike: the constants, the task's checks, the deadline and epoch rules,
/// the charge and fee split of a single task and the ERC-8004 response, defined once.
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
    /// @dev EIP-712 type of a task; protocols/wire/task.ts spells the same type.
    bytes32 internal constant TASK_TYPEHASH = keccak256(
        "TaskAnnouncement(bytes modelId,bytes input,bytes32 inputRef,bytes params,uint256 fee,uint64 deadline,uint16 quorumBps,uint64 nonce,address requester,bytes32 validationRequest,uint8 tier,bytes32 inputCommitment)"
    );
    /// @dev Task.tier (issue 16): what proves a task's result.
    uint8 internal constant TIER_REPLICATED = 0;
    uint8 internal constant TIER_ZK = 1;
    uint8 internal constant TIER_BOTH = 2;

    /// @dev The EIP-712 struct hash of a task (TaskManager.taskDigest hashes it under its domain).
    function taskStructHash(TaskManager.Task calldata task) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                TASK_TYPEHASH,
                keccak256(task.modelId),
                task.inputHash,
                task.inputRef,
                task.paramsHash,
                task.fee,
                task.deadline,
                task.quorumBps,
                task.nonce,
                task.requester,
                task.validationRequest,
                task.tier,
                task.inputCommitment
            )
        );
    }

    /// @dev The checks every single task passes before it settles, whatever proves its result:
    /// not a tab task, `taskId` is its `digest`, signed by its requester, within its deadline, the
    /// requester has access to the model at the deadline (takes a credit under the credits tier)
    /// and the fee covers the model's fee and the network's minimum. Returns who the model pays
    /// and its fee.
    function checkTask(
        ModelRegistry models,
        TaskManagerGovernance.Parameters storage params,
        bytes32 taskId,
        bytes32 digest,
        TaskManager.Task calldata task,
        bytes calldata requesterSig
    ) internal returns (address modelOwner, uint256 modelFee) {
        if (task.nonce < TAB_SEQUENCE_LIMIT) revert TaskManager.TabTaskSettlesInBatch(taskId, task.nonce);
        if (digest != taskId) revert TaskManager.TaskIdMismatch(taskId, digest);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, requesterSig);
        if (err != ECDSA.RecoverError.NoError || signer != task.requester) revert TaskManager.InvalidRequesterSignature(task.requester);
        checkDeadline(task.deadline, params.settlementWindow, params.maxTaskLife);
        // the requester's access at the task's deadline (seconds); takes a credit under the credits tier
        (modelOwner, modelFee) = models.useAccess(keccak256(task.modelId), task.requester, uint64(task.deadline / MS_PER_SECOND));
        uint256 required = modelFee + params.minTaskFee;
        if (task.fee < required) revert TaskManager.FeeBelowMinimum(task.fee, required);
    }

    /// @dev A certificate's epoch must have started, be at most maxEpochAge old, and settlement not paused.
    function checkEpoch(OperatorRegistry registry, uint64 maxEpochAge, uint64 epoch) internal view {
        uint64 current = registry.settlementEpoch(); // reverts Paused while the guardian's pause holds
        if (epoch > current) revert TaskManager.FutureEpoch(epoch, current);
        if (epoch == 0 || uint256(epoch) + maxEpochAge < current) revert TaskManager.StaleEpoch(epoch, current);
    }

    /// @dev Takes up to `fee` from `requester`'s balance; records and announces any shortfall
    /// (PaymentVault._charge: a single task settles whether or not its requester can pay).
    function charge(
        mapping(address => PaymentVault.Account) storage accounts,
        mapping(address => uint256) storage shortfalls,
        address requester,
        bytes32 taskId,
        uint256 fee
    ) internal returns (uint256 charged) {
        if (fee == 0) return 0;
        PaymentVault.Account storage a = accounts[requester];
        uint256 balance = a.balance;
        if (balance >= fee) {
            unchecked {
                a.balance = uint128(balance - fee);
            }
            return fee;
        }
        charged = balance;
        if (charged != 0) a.balance = 0;
        uint256 shortfall = fee - charged;
        shortfalls[requester] += shortfall;
        emit PaymentVault.RequesterDefaulted(requester, taskId, fee, charged, shortfall);
    }

    /// @dev The owner's and the treasury's shares of `charged`: the model's fee (what there is of
    /// it), then protocolFeeBps of the rest; credits both and returns what is left.
    function creditOwnerAndTreasury(
        mapping(address => uint256) storage credits,
        TaskManagerGovernance.Parameters storage params,
        uint256 charged,
        address modelOwner,
        uint256 modelFee
    ) internal returns (uint256 ownerShare, uint256 protocolShare, uint256 rest) {
        // an unregistered model (owner 0) has fee 0: everything after the protocol fee goes on
        ownerShare = charged < modelFee ? charged : modelFee;
        if (ownerShare != 0) credits[modelOwner] += ownerShare;
        rest = charged - ownerShare;
        protocolShare = rest * params.protocolFeeBps / BPS_DENOMINATOR;
        if (protocolShare != 0) credits[params.treasury] += protocolShare;
        rest -= protocolShare;
    }

    /// @dev A single certificate's fee: debits it (what there is of it), credits owner and
    /// treasury, raises the epoch's index by the signers' share per unit of signed stake and
    /// excludes each non-signer from it. With a prover (tier both), half the signers' share,
    /// rounded down, is credited to it instead (address(0): none, tier replicated). signedStake > 0.
    function settleSingle(
        mapping(address => PaymentVault.Account) storage accounts,
        mapping(address => uint256) storage shortfalls,
        mapping(address => uint256) storage credits,
        TaskManagerGovernance.Parameters storage params,
        mapping(uint64 => TaskManager.EpochRewards) storage epochRewards,
        mapping(uint64 => mapping(address => TaskManager.Missed)) storage missed,
        bytes32 taskId,
        uint64 epoch,
        TaskManager.NonSigner[] calldata nonSigners,
        address requester,
        uint256 fee,
        address modelOwner,
        uint256 modelFee,
        uint256 signedStake,
        address prover
    ) internal {
        uint256 charged = charge(accounts, shortfalls, requester, taskId, fee);
        (uint256 ownerShare, uint256 protocolShare, uint256 signersShare) =
            creditOwnerAndTreasury(credits, params, charged, modelOwner, modelFee);
        if (prover != address(0)) {
            uint256 proverShare = signersShare / 2;
            signersShare -= proverShare;
            credits[prover] += proverShare;
            emit TaskManager.ProverPaid(taskId, prover, proverShare);
        }

        // signedStake > 0: quorumBps > 0 of a positive total stake signed
        uint256 increment = signersShare * REWARD_SCALE / signedStake;
        TaskManager.EpochRewards memory r = epochRewards[epoch];
        epochRewards[epoch] = TaskManager.EpochRewards({index: SafeCast.toUint192(r.index + increment), certificates: r.certificates + 1});
        for (uint256 k; k < nonSigners.length; ++k) {
            TaskManager.Missed storage m = missed[epoch][nonSigners[k].operator];
            (uint256 excluded, uint64 count) = (m.excluded, m.count);
            (m.excluded, m.count) = (uint192(excluded + increment), count + 1);
        }
        emit TaskManager.TaskCharged(taskId, requester, charged, modelOwner, ownerShare, protocolShare, signersShare);
    }

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
        respond(validationRegistry, taskId, requestHash, resultHash, "poi-qc");
    }

    /// @dev respond() with the response's tag: "poi-qc" for a quorum certificate, "poi-zk" for a proof.
    function respond(IValidationRegistry validationRegistry, bytes32 taskId, bytes32 requestHash, bytes32 resultHash, string memory tag)
        internal
    {
        string memory uri = string.concat("poi://task/", Strings.toHexString(uint256(taskId), 32));
        try validationRegistry.validationResponse{gas: VALIDATION_GAS_LIMIT}(
            requestHash, VALIDATION_RESPONSE, uri, resultHash, tag
        ) {} catch (bytes memory reason) {
            emit TaskManager.ValidationResponseFailed(taskId, requestHash, reason);
        }
    }
}
