// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {BLS12381} from "./BLS12381.sol";
import {OperatorRegistry, OperatorTree, PoiMessages} from "./OperatorRegistry.sol";

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
    uint256 public constant MIN_SIGNERS = 3;

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

        uint256 signers = _countSigners(qc.signerBitmap, ep.count, nonSigners);

        uint256 nonSignerStake;
        BLS.G1Point memory nonSignerKeys;
        for (uint256 k; k < nonSigners.length; ++k) {
            NonSigner calldata s = nonSigners[k];
            BLS.G1Point memory key = s.pubkey;
            bytes32 leafHash = OperatorTree.leaf(s.index, s.operator, key, s.stake);
            if (!OperatorTree.verify(ep.root, ep.count, s.index, leafHash, s.proof)) revert InvalidNonSignerProof(s.index);
            nonSignerStake += s.stake;
            nonSignerKeys = k == 0 ? key : BLS12381.g1Add(nonSignerKeys, key);
        }

        if (signers < MIN_SIGNERS) revert TooFewSigners(signers, MIN_SIGNERS);
        uint256 signedStake = ep.totalStake - nonSignerStake;
        if (signedStake * BPS_DENOMINATOR < uint256(quorumBps) * ep.totalStake) {
            revert InsufficientStake(signedStake, (uint256(quorumBps) * ep.totalStake + BPS_DENOMINATOR - 1) / BPS_DENOMINATOR);
        }

        BLS.G1Point memory signingKey = nonSigners.length == 0 ? ep.apk : BLS12381.g1Sub(ep.apk, nonSignerKeys);
        bytes32 digest = PoiMessages.attestationDigest(address(this), qc.taskId, qc.resultHash, qc.outputRef, qc.epoch);
        if (!BLS12381.verify(signingKey, abi.encodePacked(digest), qc.signature)) revert InvalidSignature();

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

    /// @dev Checks the bitmap is canonical for `count` operators and that its zero bits are exactly
    /// the non-signers' indices; returns the number of signers. Word-wise popcount, so the cost
    /// is flat in the set size (32 bytes cover 256 operators) and linear in the non-signers.
    function _countSigners(bytes calldata bitmap, uint256 count, NonSigner[] calldata nonSigners)
        internal
        pure
        returns (uint256 signers)
    {
        uint256 len = bitmap.length;
        // Canonical form (consensus/bitmap.ts): non-empty, no trailing zero byte, no byte past
        // the set, no bit at or beyond `count`. One encoding per signer set.
        if (len == 0 || len > (count + 7) / 8) revert BitmapMismatch();
        uint256 last = uint8(bitmap[len - 1]);
        if (last == 0) revert BitmapMismatch();
        uint256 bitsInLast = count - 8 * (len - 1);
        if (bitsInLast < 8 && (last >> bitsInLast) != 0) revert BitmapMismatch();

        for (uint256 offset; offset < len; offset += 32) {
            uint256 word;
            assembly ("memory-safe") {
                word := calldataload(add(bitmap.offset, offset))
            }
            uint256 remaining = len - offset;
            if (remaining < 32) word &= type(uint256).max << (8 * (32 - remaining));
            signers += _popcount(word);
        }

        if (nonSigners.length != count - signers) revert BitmapMismatch();
        uint256 next; // smallest index the next non-signer may have: strictly ascending
        for (uint256 k; k < nonSigners.length; ++k) {
            uint256 index = nonSigners[k].index;
            if (index < next || index >= count) revert BitmapMismatch();
            if (index >> 3 < len && (uint8(bitmap[index >> 3]) >> (index & 7)) & 1 != 0) revert BitmapMismatch();
            next = index + 1;
        }
    }

    /// @dev SWAR popcount of a 256-bit word.
    function _popcount(uint256 x) internal pure returns (uint256) {
        unchecked {
            x = x - ((x >> 1) & 0x5555555555555555555555555555555555555555555555555555555555555555);
            x = (x & 0x3333333333333333333333333333333333333333333333333333333333333333)
                + ((x >> 2) & 0x3333333333333333333333333333333333333333333333333333333333333333);
            x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f;
            // per-byte counts (≤ 8) into 16-bit lanes (≤ 16), then sum the lanes in the top one (≤ 256)
            x = (x & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff)
                + ((x >> 8) & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff);
            return (x * 0x0001000100010001000100010001000100010001000100010001000100010001) >> 240;
        }
    }
}
