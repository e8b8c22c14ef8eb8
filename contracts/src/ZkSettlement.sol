// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IValidationRegistry} from "./IValidationRegistry.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {OperatorRegistry} from "./OperatorRegistry.sol";
import {PaymentVault} from "./PaymentVault.sol";
import {QuorumCertificates} from "./QuorumCertificates.sol";
import {SettlementRules} from "./SettlementRules.sol";
import {TaskManager} from "./TaskManager.sol";
import {TaskManagerGovernance} from "./TaskManagerGovernance.sol";

/// @title ZkSettlement
/// @notice The zk tier's settlement (issue 16): a task of tier zk settles on a Groth16 proof of
/// its inference, checked by the model's registered verifier (ModelRegistry.verifyZkProof), and
/// pays its prover; a task of tier both settles on a quorum certificate and a proof of the same
/// result, and splits the signers' share with the prover.
/// @dev A linked library run by TaskManager.submitZkResult and submitCertificateWithProof through
/// DELEGATECALL on the TaskManager's storage, as BatchSettlement is: the TaskManager keeps 3 KiB
/// of EIP-170 headroom (test/payments.test.ts) and both entry points are thin there. Everything a
/// single task settles by is SettlementRules' (the task's checks, the epoch rule, the charge, the
/// owner's and treasury's shares, the signers' reward index), shared with submitCertificate.
/// Both functions take the same seven storage slots first (TaskManager._runZkSettlement passes
/// them, then its caller's arguments as they came); the references (registry, models, validation
/// registry) and the task's digest come from the TaskManager's getters (calls to itself, a few
/// thousand gas beside the proof's 230,000). Reverts with the TaskManager's errors and ZkProofs'
/// (through the ModelRegistry), and emits the TaskManager's events.
library ZkSettlement {
    /// @dev ERC-8004 tag of a response a proof alone answered (a certificate's is "poi-qc").
    string internal constant ZK_RESPONSE_TAG = "poi-zk";

    /// @notice See TaskManager.submitZkResult.
    function submitZkResult(
        mapping(bytes32 => bytes32) storage results,
        mapping(address => PaymentVault.Account) storage accounts,
        mapping(address => uint256) storage shortfalls,
        mapping(address => uint256) storage credits,
        TaskManagerGovernance.Parameters storage params,
        mapping(uint64 => TaskManager.EpochRewards) storage,
        mapping(uint64 => mapping(address => TaskManager.Missed)) storage,
        TaskManager.Task calldata task,
        bytes calldata requesterSig,
        TaskManager.ZkResult calldata r
    ) external returns (bool accepted) {
        TaskManager self = TaskManager(address(this));
        bytes32 taskId = self.taskDigest(task);
        if (results[taskId] != 0) return false;
        if (task.tier == SettlementRules.TIER_REPLICATED) revert TaskManager.TaskNotZkTier(taskId, task.tier);
        if (task.tier != SettlementRules.TIER_ZK) revert TaskManager.WrongProofTier(taskId, task.tier);
        ModelRegistry models = self.models();
        (address modelOwner, uint256 modelFee) = SettlementRules.checkTask(models, params, taskId, taskId, task, requesterSig);
        // the current epoch names when it settled, as a certificate's does; reverts Paused while paused
        uint64 epoch = self.registry().settlementEpoch();
        verify(models, taskId, task, r);

        bytes32 resultHash = bytes32(r.outputCommitment);
        results[taskId] = keccak256(abi.encode(resultHash, r.outputRef, epoch));
        uint256 charged = SettlementRules.charge(accounts, shortfalls, task.requester, taskId, task.fee);
        (uint256 ownerShare, uint256 protocolShare, uint256 proverShare) =
            SettlementRules.creditOwnerAndTreasury(credits, params, charged, modelOwner, modelFee);
        credits[r.prover] += proverShare;
        emit TaskManager.TaskCharged(taskId, task.requester, charged, modelOwner, ownerShare, protocolShare, 0);
        emit TaskManager.ProverPaid(taskId, r.prover, proverShare);
        if (task.validationRequest != 0) {
            IValidationRegistry validationRegistry = self.validationRegistry();
            if (address(validationRegistry) != address(0)) {
                SettlementRules.respond(validationRegistry, taskId, task.validationRequest, resultHash, ZK_RESPONSE_TAG);
            }
        }
        return true;
    }

    /// @notice See TaskManager.submitCertificateWithProof.
    function submitCertificateWithProof(
        mapping(bytes32 => bytes32) storage results,
        mapping(address => PaymentVault.Account) storage accounts,
        mapping(address => uint256) storage shortfalls,
        mapping(address => uint256) storage credits,
        TaskManagerGovernance.Parameters storage params,
        mapping(uint64 => TaskManager.EpochRewards) storage epochRewards,
        mapping(uint64 => mapping(address => TaskManager.Missed)) storage missed,
        TaskManager.Certificate calldata qc,
        TaskManager.NonSigner[] calldata nonSigners,
        TaskManager.Task calldata task,
        bytes calldata requesterSig,
        TaskManager.ZkResult calldata r
    ) external returns (bool accepted) {
        if (results[qc.taskId] != 0) return false;
        if (task.tier == SettlementRules.TIER_REPLICATED) revert TaskManager.TaskNotZkTier(qc.taskId, task.tier);
        if (task.tier != SettlementRules.TIER_BOTH) revert TaskManager.WrongProofTier(qc.taskId, task.tier);
        TaskManager self = TaskManager(address(this));
        ModelRegistry models = self.models();
        (address modelOwner, uint256 modelFee) = SettlementRules.checkTask(models, params, qc.taskId, self.taskDigest(task), task, requesterSig);
        if (qc.resultHash != bytes32(r.outputCommitment)) revert TaskManager.ZkResultMismatch(qc.resultHash, bytes32(r.outputCommitment));

        OperatorRegistry registry = self.registry();
        SettlementRules.checkEpoch(registry, params.maxEpochAge, qc.epoch);
        uint16 networkBps = params.quorumBps;
        uint16 bps = task.quorumBps > networkBps ? task.quorumBps : networkBps;
        uint256 signedStake = QuorumCertificates.verify(registry.getEpoch(qc.epoch), address(this), bps, qc, nonSigners);
        verify(models, qc.taskId, task, r);

        results[qc.taskId] = keccak256(abi.encode(qc.resultHash, qc.outputRef, qc.epoch));
        emit TaskManager.CertificateAccepted(qc.taskId, qc.resultHash, qc.outputRef, qc.epoch, signedStake, msg.sender);
        SettlementRules.settleSingle(
            accounts, shortfalls, credits, params, epochRewards, missed,
            qc.taskId, qc.epoch, nonSigners, task.requester, task.fee, modelOwner, modelFee, signedStake, r.prover
        );
        if (task.validationRequest != 0) {
            IValidationRegistry validationRegistry = self.validationRegistry();
            if (address(validationRegistry) != address(0)) {
                SettlementRules.respond(validationRegistry, qc.taskId, task.validationRequest, qc.resultHash);
            }
        }
        return true;
    }

    /// @dev Reverts unless `r` proves, under the model's registered verifier, that its circuit maps
    /// the task's inputCommitment to r.outputCommitment for r.prover (ZkProofs' named reverts
    /// propagate from the ModelRegistry); emits ZkResultAccepted. The call forwards all gas left:
    /// with too little, ZkProofs reverts ZkVerifierOutOfGas instead of calling the proof invalid,
    /// so eth_estimateGas converges on a limit that verifies.
    function verify(ModelRegistry models, bytes32 taskId, TaskManager.Task calldata task, TaskManager.ZkResult calldata r) private {
        // a proof for address(0) would credit no one
        if (r.prover == address(0)) revert TaskManager.ZeroAddress();
        models.verifyZkProof(
            keccak256(task.modelId), r.a, r.b, r.c, [r.circuitId, uint256(task.inputCommitment), r.outputCommitment, uint256(uint160(r.prover))]
        );
        emit TaskManager.ZkResultAccepted(taskId, r.outputCommitment, r.outputRef, r.prover, msg.sender);
    }
}
