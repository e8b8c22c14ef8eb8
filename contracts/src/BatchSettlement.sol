// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IValidationRegistry} from "./IValidationRegistry.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {OperatorRegistry, PoiMessages} from "./OperatorRegistry.sol";
import {PaymentVault} from "./PaymentVault.sol";
import {QuorumCertificates} from "./QuorumCertificates.sol";
import {SettlementRules} from "./SettlementRules.sol";
import {TaskManager} from "./TaskManager.sol";
import {TaskManagerGovernance} from "./TaskManagerGovernance.sol";

/// @title BatchSettlement
/// @notice Settlement of a batch (issue 15, /work/spec15.md): one quorum certificate over a Merkle
/// root of many task results and a settlement summary, paid from the requesters' credit tabs.
/// @dev A linked library with one external function, run by TaskManager.submitBatch through
/// DELEGATECALL on the TaskManager's own storage (the storage it touches is passed as storage
/// pointers). Why not in TaskManager: its runtime code was 20.5 KB before batches and EIP-170
/// caps it at 24,576 bytes; the batch path (summary encoding, tab and bitmap checks, the fee
/// split) does not fit beside it. The single-certificate path stays in TaskManager untouched, so
/// a certificate costs what it did; a batch pays one DELEGATECALL and the copy of its calldata
/// (a few thousand gas, shared by every task of the batch). Reverts with TaskManager's errors
/// and emits TaskManager's events (they appear as the TaskManager's, the code running in its
/// context), so the TaskManager's ABI describes the batch path completely.
/// Nothing is written or emitted per leaf: per batch one slot (root → epoch), per requester its
/// tab slot, its deposit slot and its settled-sequence bitmap words, per model owner its credit.
library BatchSettlement {
    /// @dev One slot per requester: what its vouchers have been charged in total and the highest
    /// voucher sequence settled.
    struct Tab {
        uint128 settled;
        uint64 lastSequence;
    }

    /// @dev The TaskManager's batch storage (one state variable, after all of its others).
    struct State {
        /// @dev root → epoch of its certificate; 0 = no such batch (epochs start at 1).
        mapping(bytes32 => uint64) epochOf;
        mapping(address => Tab) tabs;
        /// @dev requester → word → bits: bit i of word w set ⇔ tab sequence w * 256 + i is settled.
        mapping(address => mapping(uint256 => uint256)) settled;
    }

    /// @dev What the TaskManager passes besides storage: its immutable references and EIP-712 domain.
    struct Refs {
        ModelRegistry models;
        IValidationRegistry validationRegistry;
        bytes32 domainSeparator;
    }

    /// @dev The TaskManager's governed parameters and references a batch needs, read once.
    struct Params {
        ModelRegistry models;
        IValidationRegistry validationRegistry;
        address treasury;
        uint16 quorumBps;
        uint16 protocolFeeBps;
        uint256 minTaskFee;
        uint64 maxTaskLife;
        uint64 settlementWindow;
        bytes32 domainSeparator;
    }

    /// @dev The payment side of a batch, summed over its tabs.
    struct Totals {
        uint256 leaves;
        uint256 charged;
        uint256 ownerShares;
        /// @dev distinct model owners so far, and their shares (memory, sized for the worst case)
        uint256 owners;
        address[] ownerOf;
        uint256[] shareOf;
    }

    /// @dev Sequences per bitmap word (one storage slot of bits).
    uint256 internal constant SEQUENCES_PER_WORD = 256;

    /// @notice Verifies the batch and settles it: see TaskManager.submitBatch. The caller has
    /// checked that the root is new, the epoch in range and the network not paused.
    function settle(
        State storage self,
        TaskManagerGovernance.Parameters storage governed,
        mapping(address => PaymentVault.Account) storage accounts,
        mapping(address => uint256) storage credits,
        mapping(uint64 => TaskManager.EpochRewards) storage epochRewards,
        mapping(uint64 => mapping(address => TaskManager.Missed)) storage missed,
        Refs memory refs,
        OperatorRegistry.Epoch memory ep,
        TaskManager.BatchCertificate calldata qc,
        TaskManager.NonSigner[] calldata nonSigners,
        TaskManager.TabCharge[] calldata tabs,
        TaskManager.Validation[] calldata validations
    ) external {
        TaskManagerGovernance.Parameters memory g = governed;
        Params memory p = Params({
            models: refs.models,
            validationRegistry: refs.validationRegistry,
            treasury: g.treasury,
            quorumBps: g.quorumBps,
            protocolFeeBps: g.protocolFeeBps,
            minTaskFee: g.minTaskFee,
            maxTaskLife: g.maxTaskLife,
            settlementWindow: g.settlementWindow,
            domainSeparator: refs.domainSeparator
        });
        // What the quorum signed: the root (a duplicated, missing or extra leaf is a different root;
        // so is a reordering, unless the commutative node hash maps it to the same root, which is
        // then the same batch the quorum signed) and the summary (changing any tab, charge, bitmap
        // or validation is a different summary). Either way the aggregate signature no longer
        // verifies: InvalidSignature.
        bytes32 summaryHash = keccak256(abi.encode(qc.leafCount, qc.batchRef, tabs, validations));
        bytes32 digest = PoiMessages.batchDigest(address(this), qc.root, qc.epoch, summaryHash);
        uint256 signedStake = QuorumCertificates.verifyDigest(ep, p.quorumBps, qc.signerBitmap, qc.signature, nonSigners, digest);

        uint256 worstCaseOwners;
        for (uint256 k; k < tabs.length; ++k) {
            worstCaseOwners += tabs[k].models.length;
        }
        Totals memory t = Totals({
            leaves: 0,
            charged: 0,
            ownerShares: 0,
            owners: 0,
            ownerOf: new address[](worstCaseOwners),
            shareOf: new uint256[](worstCaseOwners)
        });
        address previous;
        for (uint256 k; k < tabs.length; ++k) {
            TaskManager.TabCharge calldata tab = tabs[k];
            // strictly ascending: one tab per requester, one encoding per batch
            if (tab.requester <= previous) revert TaskManager.TabsOutOfOrder(tab.requester);
            previous = tab.requester;
            _settleTab(self, accounts, p, tab, t);
        }
        if (t.leaves != qc.leafCount || t.leaves == 0) revert TaskManager.LeafCountMismatch(qc.leafCount, t.leaves);

        self.epochOf[qc.root] = qc.epoch;
        emit TaskManager.BatchAccepted(qc.root, qc.epoch, qc.leafCount, qc.batchRef, signedStake, msg.sender);

        for (uint256 k; k < t.owners; ++k) {
            credits[t.ownerOf[k]] += t.shareOf[k];
            emit TaskManager.BatchOwnerCredited(qc.root, t.ownerOf[k], t.shareOf[k]);
        }
        uint256 rest = t.charged - t.ownerShares;
        uint256 protocolShare = rest * p.protocolFeeBps / SettlementRules.BPS_DENOMINATOR;
        if (protocolShare != 0) credits[p.treasury] += protocolShare;
        uint256 signersShare = rest - protocolShare;
        emit TaskManager.BatchCharged(qc.root, t.charged, t.ownerShares, protocolShare, signersShare);

        // The signers' share through the epoch's reward index, once; reputation stays per task:
        // the epoch counts leafCount certificates, and each non-signer missed leafCount of them.
        uint256 increment = signersShare * SettlementRules.REWARD_SCALE / signedStake;
        TaskManager.EpochRewards memory r = epochRewards[qc.epoch];
        epochRewards[qc.epoch] = TaskManager.EpochRewards({
            index: SafeCast.toUint192(r.index + increment),
            certificates: r.certificates + qc.leafCount
        });
        for (uint256 k; k < nonSigners.length; ++k) {
            TaskManager.Missed storage m = missed[qc.epoch][nonSigners[k].operator];
            (uint256 excluded, uint64 count) = (m.excluded, m.count);
            (m.excluded, m.count) = (uint192(excluded + increment), count + qc.leafCount);
        }

        if (address(p.validationRegistry) != address(0)) {
            for (uint256 k; k < validations.length; ++k) {
                TaskManager.Validation calldata v = validations[k];
                SettlementRules.respond(p.validationRegistry, v.taskId, v.requestHash, v.resultHash);
            }
        }
    }

    /// @dev One requester's part: its voucher, the sequences it settles, its models' access and
    /// fees, then the debit of its deposit. Adds to `t`.
    function _settleTab(
        State storage self,
        mapping(address => PaymentVault.Account) storage accounts,
        Params memory p,
        TaskManager.TabCharge calldata tab,
        Totals memory t
    ) private {
        address requester = tab.requester;
        Tab memory tabNow = self.tabs[requester];
        // An older voucher after a newer one, or the same one again.
        if (tab.sequence <= tabNow.lastSequence) revert TaskManager.StaleVoucher(tab.sequence, tabNow.lastSequence);
        // The voucher's taskManager is this contract by construction (the batch carries no other),
        // so a voucher signed for another TaskManager, chain or requester fails here.
        bytes32 structHash = keccak256(abi.encode(SettlementRules.VOUCHER_TYPEHASH, requester, address(this), tab.cumulative, tab.sequence));
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecoverCalldata(MessageHashUtils.toTypedDataHash(p.domainSeparator, structHash), tab.signature);
        if (err != ECDSA.RecoverError.NoError || signer != requester) revert TaskManager.InvalidVoucherSignature(requester);

        uint256 leaves = _markSequences(self.settled[requester], tab);

        uint256 charge;
        uint256 counted;
        bytes32 previousKey;
        for (uint256 k; k < tab.models.length; ++k) {
            TaskManager.ModelCharge calldata mc = tab.models[k];
            if (k != 0 && mc.modelKey <= previousKey) revert TaskManager.ModelsOutOfOrder(requester, mc.modelKey);
            previousKey = mc.modelKey;
            if (mc.count == 0) revert TaskManager.MalformedTab(requester);
            SettlementRules.checkDeadline(mc.firstDeadline * uint64(SettlementRules.MS_PER_SECOND), p.settlementWindow, p.maxTaskLife);
            SettlementRules.checkDeadline(mc.lastDeadline * uint64(SettlementRules.MS_PER_SECOND), p.settlementWindow, p.maxTaskLife);
            // access for all `count` tasks at once: credits taken, subscription held at the latest deadline
            (address owner, uint256 modelFee) = p.models.useAccessBatch(mc.modelKey, requester, mc.lastDeadline, mc.count);
            uint256 required = uint256(mc.count) * (modelFee + p.minTaskFee);
            if (mc.fees < required) revert TaskManager.FeeBelowMinimum(mc.fees, required);
            charge += mc.fees;
            counted += mc.count;
            // an unregistered model (owner 0) has fee 0: everything after the protocol fee goes to the signers
            uint256 ownerShare = uint256(mc.count) * modelFee;
            if (ownerShare != 0) _addOwnerShare(t, owner, ownerShare);
        }
        if (counted != leaves) revert TaskManager.LeafCountMismatch(leaves, counted);

        uint256 settledPlusCharge = tabNow.settled + charge;
        if (settledPlusCharge > tab.cumulative) revert TaskManager.VoucherExceeded(tab.cumulative, settledPlusCharge);
        // The whole balance is chargeable (a pending withdrawal included, as for single
        // certificates); nothing is charged partially in a batch.
        PaymentVault.Account storage a = accounts[requester];
        uint256 balance = a.balance;
        if (balance < charge) revert TaskManager.InsufficientDeposit(requester, balance, charge);
        unchecked {
            a.balance = uint128(balance - charge);
        }
        self.tabs[requester] = Tab({settled: SafeCast.toUint128(settledPlusCharge), lastSequence: tab.sequence});
        emit TaskManager.TabSettled(requester, tab.sequence, tab.cumulative, charge);

        t.leaves += leaves;
        t.charged += charge;
    }

    /// @dev Sets the tab's sequence bits in the requester's bitmap, refusing any already set; checks
    /// the highest is the voucher's sequence. Returns how many sequences the tab settles.
    function _markSequences(mapping(uint256 => uint256) storage bits, TaskManager.TabCharge calldata tab)
        private
        returns (uint256 leaves)
    {
        uint256 words = tab.sequenceBits.length;
        if (words == 0 || tab.models.length == 0) revert TaskManager.MalformedTab(tab.requester);
        uint256 lastWord = tab.sequenceBits[words - 1];
        // sequence 0 does not exist (tabs start at 1); the last word must name the highest sequence
        if (lastWord == 0 || (tab.firstWord == 0 && tab.sequenceBits[0] & 1 != 0)) revert TaskManager.MalformedTab(tab.requester);
        uint256 highest = (uint256(tab.firstWord) + words - 1) * SEQUENCES_PER_WORD + Math.log2(lastWord);
        // the voucher is the tab's highest: it authorises every sequence below it; sequence < 2**40 bounds the words
        if (highest != tab.sequence || tab.sequence >= SettlementRules.TAB_SEQUENCE_LIMIT) {
            revert TaskManager.VoucherSequenceMismatch(tab.sequence, highest);
        }
        for (uint256 k; k < words; ++k) {
            uint256 word = tab.sequenceBits[k];
            if (word == 0) continue;
            uint256 index = uint256(tab.firstWord) + k;
            uint256 before = bits[index];
            uint256 overlap = before & word;
            if (overlap != 0) {
                revert TaskManager.TaskAlreadySettled(tab.requester, index * SEQUENCES_PER_WORD + Math.log2(overlap & (~overlap + 1)));
            }
            bits[index] = before | word;
            leaves += QuorumCertificates.popcount(word);
        }
    }

    /// @dev Adds `share` to `owner`'s total in this batch (a few owners per batch: a linear scan).
    function _addOwnerShare(Totals memory t, address owner, uint256 share) private pure {
        t.ownerShares += share;
        for (uint256 k; k < t.owners; ++k) {
            if (t.ownerOf[k] == owner) {
                t.shareOf[k] += share;
                return;
            }
        }
        t.ownerOf[t.owners] = owner;
        t.shareOf[t.owners] = share;
        ++t.owners;
    }
}
