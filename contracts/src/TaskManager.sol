// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {OperatorRegistry, PoiMessages} from "./OperatorRegistry.sol";
import {QuorumCertificates} from "./QuorumCertificates.sol";

/// @title TaskManager
/// @notice Verifies quorum certificates and stores each task's certified result. The signing key
/// is the epoch's aggregate key minus the non-signers' keys, so the cost grows with the number of
/// non-signers (each proven against the epoch root), not with the size of the operator set.
contract TaskManager {
    struct Certificate {
        bytes32 taskId;
        bytes32 resultHash;
        bytes32 outputRef;
        uint64 epoch;
        /// @dev Bit i (LSB first within each byte) = operator i signed; canonical: no trailing zero byte.
        bytes signerBitmap;
        BLS.G2Point signature;
    }

    struct NonSigner {
        uint32 index;
        address operator;
        BLS.G1Point pubkey;
        uint256 stake;
        bytes32[] proof;
    }

    struct Result {
        bytes32 resultHash;
        bytes32 outputRef;
        /// @dev 0 = no result yet (epochs start at 1).
        uint64 epoch;
    }

    uint256 internal constant BPS_DENOMINATOR = 10_000;
    /// @dev DESIGN §5: at least 3 signers whatever their stake (consensus DEFAULT_MIN_SIGNERS).
    uint256 public constant MIN_SIGNERS = QuorumCertificates.MIN_SIGNERS;

    OperatorRegistry public immutable registry;
    uint16 public immutable quorumBps;
    /// @notice A certificate's epoch may be at most this many epochs behind the current one.
    uint64 public immutable maxEpochAge;

    /// @dev taskId → keccak256(abi.encode(resultHash, outputRef, epoch)); zero = no result yet.
    /// One slot instead of three keeps a certificate under 250k gas; the values themselves are
    /// in the CertificateAccepted event, and `hasResult` checks any claimed triple against this.
    mapping(bytes32 => bytes32) internal _results;

    event CertificateAccepted(
        bytes32 indexed taskId, bytes32 resultHash, bytes32 outputRef, uint64 epoch, uint256 signedStake, address submitter
    );

    error InvalidBps(uint256 bps);
    error FutureEpoch(uint64 epoch, uint64 current);
    error StaleEpoch(uint64 epoch, uint64 current);
    error BitmapMismatch();
    error InvalidNonSignerProof(uint32 index);
    error TooFewSigners(uint256 signers, uint256 min);
    error InsufficientStake(uint256 signed, uint256 required);
    error InvalidSignature();
    /// @notice maxEpochAge would accept certificates of epochs whose stake the registry may already
    /// have paid out (it keeps an exiting stake for registryMax epochs after it last counted it).
    error EpochAgeExceedsRegistry(uint64 maxEpochAge, uint64 registryMax);

    constructor(address registry_, uint16 quorumBps_, uint64 maxEpochAge_) {
        if (quorumBps_ == 0 || quorumBps_ > BPS_DENOMINATOR) revert InvalidBps(quorumBps_);
        uint64 registryMax = OperatorRegistry(registry_).maxCertificateAge();
        if (maxEpochAge_ > registryMax) revert EpochAgeExceedsRegistry(maxEpochAge_, registryMax);
        registry = OperatorRegistry(registry_);
        quorumBps = quorumBps_;
        maxEpochAge = maxEpochAge_;
    }

    /// @notice Verify `qc` and record its result. Returns false, changing nothing, when the task
    /// already has a result: aggregators race, and the loser's transaction should not revert.
    /// @param nonSigners Exactly the operators whose bit is zero, ascending by index, each with its
    /// leaf proof against the epoch root (contracts/calldata.ts builds them).
    function submitCertificate(Certificate calldata qc, NonSigner[] calldata nonSigners) external returns (bool accepted) {
        if (_results[qc.taskId] != 0) return false;

        uint64 current = registry.currentEpoch();
        if (qc.epoch > current) revert FutureEpoch(qc.epoch, current);
        if (qc.epoch == 0 || uint256(qc.epoch) + maxEpochAge < current) revert StaleEpoch(qc.epoch, current);
        OperatorRegistry.Epoch memory ep = registry.getEpoch(qc.epoch);
        uint256 signedStake = QuorumCertificates.verify(ep, address(this), quorumBps, qc, nonSigners);

        _results[qc.taskId] = resultCommitment(Result({resultHash: qc.resultHash, outputRef: qc.outputRef, epoch: qc.epoch}));
        emit CertificateAccepted(qc.taskId, qc.resultHash, qc.outputRef, qc.epoch, signedStake, msg.sender);
        return true;
    }

    /// @notice The commitment stored for a task's result (zero when the task has none yet).
    function getResultCommitment(bytes32 taskId) external view returns (bytes32) {
        return _results[taskId];
    }

    function isSettled(bytes32 taskId) external view returns (bool) {
        return _results[taskId] != 0;
    }

    /// @notice Whether `result` is the certified result of `taskId` (values from CertificateAccepted).
    function hasResult(bytes32 taskId, Result calldata result) external view returns (bool) {
        bytes32 stored = _results[taskId];
        return stored != 0 && stored == resultCommitment(result);
    }

    function resultCommitment(Result memory result) public pure returns (bytes32) {
        return keccak256(abi.encode(result.resultHash, result.outputRef, result.epoch));
    }

    /// @notice The 32-byte message operators sign for a result on this chain and contract.
    function attestationDigest(bytes32 taskId, bytes32 resultHash, bytes32 outputRef, uint64 epoch)
        external
        view
        returns (bytes32)
    {
        return PoiMessages.attestationDigest(address(this), taskId, resultHash, outputRef, epoch);
    }
}
