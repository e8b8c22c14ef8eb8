// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {BLS12381} from "./BLS12381.sol";
import {OperatorRegistry, OperatorTree, PoiMessages} from "./OperatorRegistry.sol";
import {QuorumCertificates} from "./QuorumCertificates.sol";
import {TaskManager} from "./TaskManager.sol";

/// @title SlashingManager
/// @notice Slashes slashBps of an operator's live stake, once per (operator, task), for signing two
/// different results of one task; the reporter gets reporterBps of each slashed amount. Four kinds
/// of evidence, each a pair of signed statements for one task with different result hashes:
/// - two attestations by the operator, each in an epoch whose set held its key (any two epochs);
/// - two valid certificates: every operator named as a signer in both is slashed. Attestations
///   alone cannot catch keys that cancel in an aggregate (pk and −pk add to nothing, so the pair
///   signs nothing yet counts as signing); the certificates they were named in can;
/// - a valid certificate and an attestation: the attester is slashed if the certificate names it;
/// - the operator's own batch signature (issue 15) over a batch holding a leaf for the task, and
///   its attestation for the task: a batch settles leaves without per-task certificates on chain,
///   so a leaf different from what the operator attested must cost as much as two attestations.
/// @dev Governance: the owner (the timelock once deployPoi hands it over) changes slashBps and
/// reporterBps within bounds (setParameter).
contract SlashingManager is Ownable {
    /// @notice An operator's leaf in an epoch's set: index, stake and Merkle proof against the root.
    struct Member {
        uint64 epoch;
        uint32 index;
        uint256 stake;
        bytes32[] proof;
    }

    /// @notice One attestation: what was signed, and the signer's membership in the epoch it names.
    struct Signed {
        Member member;
        bytes32 resultHash;
        bytes32 outputRef;
        BLS.G2Point signature;
    }

    struct Evidence {
        bytes32 taskId;
        address operator;
        BLS.G1Point pubkey;
        Signed a;
        Signed b;
    }

    /// @notice An operator named as a signer in both certificates, with its leaf in each one's epoch.
    struct Accused {
        address operator;
        BLS.G1Point pubkey;
        Member inA;
        Member inB;
    }

    /// @notice One operator's signature over a batch (its gossiped BatchSignature) and the batch's
    /// leaf for the task, proven against the batch root.
    struct BatchStatement {
        Member member;
        bytes32 root;
        bytes32 summaryHash;
        bytes32 resultHash;
        bytes32 outputRef;
        bytes32[] leafProof;
        BLS.G2Point signature;
    }

    uint256 internal constant BPS_DENOMINATOR = 10_000;
    /// @notice Lowest slashBps governance may set: an equivocation must cost at least a tenth of
    /// the stake, or signing two results becomes a cheap bet.
    uint16 public constant MIN_SLASH_BPS = 1000;
    /// @notice Highest reporterBps governance may set: an operator reporting its own equivocation
    /// must still lose at least half of what is slashed.
    uint16 public constant MAX_REPORTER_BPS = 5000;

    OperatorRegistry public immutable registry;
    address public immutable taskManager;
    /// @dev slashBps and reporterBps share one slot with the owner (read together in _slash).
    uint16 public slashBps;
    uint16 public reporterBps;

    mapping(address => mapping(bytes32 => bool)) public slashed;

    /// @notice One operator slashed for one task, whatever the kind of evidence; `epoch` is the
    /// epoch of the first statement (attestation a, certificate a, or the certificate).
    event EquivocationSlashed(
        address indexed operator, bytes32 indexed taskId, uint64 epoch, uint256 amount, address reporter, uint256 reward
    );
    /// @notice A governed parameter changed (`name` as bytes32 of its ASCII name, e.g. "slashBps").
    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);

    error InvalidBps(uint256 bps);
    error IdenticalResults();
    error AlreadySlashed();
    error InvalidOperatorProof();
    error InvalidSignature(uint8 which);
    /// @notice The two statements are about different tasks.
    error DifferentTasks();
    /// @notice No operator named: conflicting certificates must accuse at least one.
    error NoOperatorNamed();
    /// @notice A certificate names no epoch that has started.
    error UnknownEpoch(uint64 epoch);
    /// @notice The operator's bit is clear in certificate `which` (0 = a, 1 = b).
    error NotASigner(address operator, uint8 which);
    /// @notice The Merkle proof does not take the task's leaf to the batch root.
    error NotInBatch();
    /// @notice setParameter knows no parameter of that name here.
    error UnknownParameter(bytes32 name);
    /// @notice `value` is outside [min, max] for parameter `name`.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);

    /// @dev Deploy-time shares only need to be basis points; setParameter enforces the governance bounds.
    constructor(address registry_, address taskManager_, uint16 slashBps_, uint16 reporterBps_) Ownable(msg.sender) {
        if (slashBps_ > BPS_DENOMINATOR) revert InvalidBps(slashBps_);
        if (reporterBps_ > BPS_DENOMINATOR) revert InvalidBps(reporterBps_);
        registry = OperatorRegistry(registry_);
        taskManager = taskManager_;
        slashBps = slashBps_;
        reporterBps = reporterBps_;
    }

    /// @notice Governance: sets "slashBps" (MIN_SLASH_BPS..10000) or "reporterBps" (0..MAX_REPORTER_BPS).
    function setParameter(bytes32 name, uint256 value) external onlyOwner {
        uint256 old;
        if (name == "slashBps") {
            if (value < MIN_SLASH_BPS || value > BPS_DENOMINATOR) revert ParameterOutOfBounds(name, value, MIN_SLASH_BPS, BPS_DENOMINATOR);
            old = slashBps;
            slashBps = uint16(value);
        } else if (name == "reporterBps") {
            if (value > MAX_REPORTER_BPS) revert ParameterOutOfBounds(name, value, 0, MAX_REPORTER_BPS);
            old = reporterBps;
            reporterBps = uint16(value);
        } else {
            revert UnknownParameter(name);
        }
        emit ParameterChanged(name, old, value);
    }

    /// @notice Two attestations by one operator for one task with different result hashes. Each
    /// names its own epoch and carries the operator's leaf in that epoch's set; the epochs may differ.
    /// @return amount The stake taken from the operator (0 if it had already withdrawn).
    function submitEvidence(Evidence calldata e) external returns (uint256 amount) {
        if (e.a.resultHash == e.b.resultHash) revert IdenticalResults();
        // before the pairings: a late duplicate report costs its sender little
        if (slashed[e.operator][e.taskId]) revert AlreadySlashed();

        BLS.G1Point memory key = e.pubkey;
        _checkMember(e.operator, key, e.a.member);
        _checkMember(e.operator, key, e.b.member);
        _checkSigned(e.taskId, e.a, key, 0);
        _checkSigned(e.taskId, e.b, key, 1);

        amount = _slash(e.operator, e.taskId, e.a.member.epoch);
    }

    /// @notice Two valid certificates for one task with different result hashes: slashes every
    /// operator of `accused`, each of which must be named as a signer in both. Operators already
    /// slashed for the task are skipped; if all were, the call reverts with AlreadySlashed.
    /// A certificate is valid as TaskManager would verify it (bitmap, non-signer proofs, signer
    /// minimum, quorum, signature), whatever its age: the signatures stay evidence.
    /// @return amount The total stake taken.
    function submitConflictingCertificates(
        TaskManager.Certificate calldata a,
        TaskManager.NonSigner[] calldata nonSignersA,
        TaskManager.Certificate calldata b,
        TaskManager.NonSigner[] calldata nonSignersB,
        Accused[] calldata accused
    ) external returns (uint256 amount) {
        if (a.taskId != b.taskId) revert DifferentTasks();
        if (a.resultHash == b.resultHash) revert IdenticalResults();
        if (accused.length == 0) revert NoOperatorNamed();
        _checkCertificate(a, nonSignersA);
        _checkCertificate(b, nonSignersB);

        bool any;
        for (uint256 k; k < accused.length; ++k) {
            Accused calldata x = accused[k];
            BLS.G1Point memory key = x.pubkey;
            _checkNamed(x.operator, key, x.inA, a, 0);
            _checkNamed(x.operator, key, x.inB, b, 1);
            if (slashed[x.operator][a.taskId]) continue;
            any = true;
            amount += _slash(x.operator, a.taskId, a.epoch);
        }
        if (!any) revert AlreadySlashed();
    }

    /// @notice A valid certificate and an attestation for the same task with a different result
    /// hash, by an operator the certificate names as a signer.
    /// @param inCertificate The operator's leaf in the certificate's epoch.
    /// @return amount The stake taken from the operator.
    function submitCertificateAndAttestation(
        TaskManager.Certificate calldata qc,
        TaskManager.NonSigner[] calldata nonSigners,
        address operator,
        BLS.G1Point calldata pubkey,
        Member calldata inCertificate,
        Signed calldata attestation
    ) external returns (uint256 amount) {
        if (qc.resultHash == attestation.resultHash) revert IdenticalResults();
        if (slashed[operator][qc.taskId]) revert AlreadySlashed();
        _checkCertificate(qc, nonSigners);
        BLS.G1Point memory key = pubkey;
        _checkNamed(operator, key, inCertificate, qc, 0);
        _checkMember(operator, key, attestation.member);
        _checkSigned(qc.taskId, attestation, key, 1);
        amount = _slash(operator, qc.taskId, qc.epoch);
    }

    /// @notice An operator's own signature over a batch whose leaf for `taskId` has one result, and
    /// its attestation for `taskId` with another. The batch need not have settled: the operator's
    /// signature over its root is the statement. `batch.member` is its leaf in the batch's epoch.
    /// @return amount The stake taken from the operator.
    function submitBatchLeafAndAttestation(
        bytes32 taskId,
        address operator,
        BLS.G1Point calldata pubkey,
        BatchStatement calldata batch,
        Signed calldata attestation
    ) external returns (uint256 amount) {
        if (batch.resultHash == attestation.resultHash) revert IdenticalResults();
        if (slashed[operator][taskId]) revert AlreadySlashed();
        BLS.G1Point memory key = pubkey;
        _checkMember(operator, key, batch.member);
        _checkMember(operator, key, attestation.member);
        bytes32 leaf = PoiMessages.batchLeaf(taskId, batch.resultHash, batch.outputRef);
        if (!MerkleProof.verifyCalldata(batch.leafProof, batch.root, leaf)) revert NotInBatch();
        bytes32 digest = PoiMessages.batchDigest(address(taskManager), batch.root, batch.member.epoch, batch.summaryHash);
        if (!BLS12381.verify(key, abi.encodePacked(digest), batch.signature)) revert InvalidSignature(0);
        _checkSigned(taskId, attestation, key, 1);
        amount = _slash(operator, taskId, batch.member.epoch);
    }

    function _slash(address operator, bytes32 taskId, uint64 epoch) internal returns (uint256 amount) {
        slashed[operator][taskId] = true;
        uint256 liveStake = registry.operators(operator).stake;
        amount = registry.slash(operator, liveStake * slashBps / BPS_DENOMINATOR, msg.sender, reporterBps);
        emit EquivocationSlashed(operator, taskId, epoch, amount, msg.sender, amount * reporterBps / BPS_DENOMINATOR);
    }

    function _checkCertificate(TaskManager.Certificate calldata qc, TaskManager.NonSigner[] calldata nonSigners)
        internal
        view
    {
        if (qc.epoch == 0 || qc.epoch > registry.currentEpoch()) revert UnknownEpoch(qc.epoch);
        QuorumCertificates.verify(
            registry.getEpoch(qc.epoch), taskManager, TaskManager(taskManager).quorumBps(), qc, nonSigners
        );
    }

    /// @dev `operator` with `key` is in `qc`'s epoch at `m.index` and its bit is set.
    function _checkNamed(
        address operator,
        BLS.G1Point memory key,
        Member calldata m,
        TaskManager.Certificate calldata qc,
        uint8 which
    ) internal view {
        if (m.epoch != qc.epoch) revert InvalidOperatorProof();
        _checkMember(operator, key, m);
        if (!QuorumCertificates.isSigner(qc.signerBitmap, m.index)) revert NotASigner(operator, which);
    }

    function _checkMember(address operator, BLS.G1Point memory key, Member calldata m) internal view {
        OperatorRegistry.Epoch memory ep = registry.getEpoch(m.epoch);
        bytes32 leafHash = OperatorTree.leaf(m.index, operator, key, m.stake);
        if (!OperatorTree.verify(ep.root, ep.count, m.index, leafHash, m.proof)) revert InvalidOperatorProof();
    }

    function _checkSigned(bytes32 taskId, Signed calldata s, BLS.G1Point memory key, uint8 which) internal view {
        bytes32 digest = PoiMessages.attestationDigest(taskManager, taskId, s.resultHash, s.outputRef, s.member.epoch);
        if (!BLS12381.verify(key, abi.encodePacked(digest), s.signature)) revert InvalidSignature(which);
    }
}
