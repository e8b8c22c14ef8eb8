// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {BLS12381} from "./BLS12381.sol";
import {OperatorRegistry, OperatorTree, PoiMessages} from "./OperatorRegistry.sol";
import {TaskManager} from "./TaskManager.sol";

/// @title QuorumCertificates
/// @notice The one check of a quorum certificate against its epoch's commitment, shared by the
/// TaskManager (which records the result) and the SlashingManager (which treats two conflicting
/// certificates as evidence). Internal functions only: the code is inlined into each caller, so a
/// certificate costs what it did when the check lived in TaskManager. Reverts with TaskManager's
/// errors, which callers' ABIs carry.
library QuorumCertificates {
    uint256 internal constant BPS_DENOMINATOR = 10_000;
    /// @dev DESIGN §5: at least 3 signers whatever their stake (consensus DEFAULT_MIN_SIGNERS).
    uint256 internal constant MIN_SIGNERS = 3;

    /// @notice Verify `qc` against epoch `ep` for the signing domain `domain` (the TaskManager's
    /// address): canonical bitmap whose zero bits are exactly `nonSigners`, each non-signer proven
    /// against the epoch root, at least MIN_SIGNERS signers, at least `quorumBps` of the stake,
    /// and one pairing for the aggregate key minus the non-signers' keys.
    /// @return signedStake The stake of the operators the bitmap names as signers.
    function verify(
        OperatorRegistry.Epoch memory ep,
        address domain,
        uint16 quorumBps,
        TaskManager.Certificate calldata qc,
        TaskManager.NonSigner[] calldata nonSigners
    ) internal view returns (uint256 signedStake) {
        bytes32 digest = PoiMessages.attestationDigest(domain, qc.taskId, qc.resultHash, qc.outputRef, qc.epoch);
        return verifyDigest(ep, quorumBps, qc.signerBitmap, qc.signature, nonSigners, digest);
    }

    /// @notice The check of `verify` for any message operators sign (a task's attestation digest,
    /// a batch's POI_BATCH_V1 digest): the same bitmap, non-signer, quorum and pairing rules; only
    /// the 32-byte `digest` hashed to G2 differs.
    function verifyDigest(
        OperatorRegistry.Epoch memory ep,
        uint16 quorumBps,
        bytes calldata signerBitmap,
        BLS.G2Point calldata signature,
        TaskManager.NonSigner[] calldata nonSigners,
        bytes32 digest
    ) internal view returns (uint256 signedStake) {
        uint256 signers = countSigners(signerBitmap, ep.count, nonSigners);

        uint256 nonSignerStake;
        BLS.G1Point memory nonSignerKeys;
        for (uint256 k; k < nonSigners.length; ++k) {
            TaskManager.NonSigner calldata s = nonSigners[k];
            BLS.G1Point memory key = s.pubkey;
            bytes32 leafHash = OperatorTree.leaf(s.index, s.operator, key, s.stake);
            if (!OperatorTree.verify(ep.root, ep.count, s.index, leafHash, s.proof)) {
                revert TaskManager.InvalidNonSignerProof(s.index);
            }
            nonSignerStake += s.stake;
            nonSignerKeys = k == 0 ? key : BLS12381.g1Add(nonSignerKeys, key);
        }

        if (signers < MIN_SIGNERS) revert TaskManager.TooFewSigners(signers, MIN_SIGNERS);
        signedStake = ep.totalStake - nonSignerStake;
        if (signedStake * BPS_DENOMINATOR < uint256(quorumBps) * ep.totalStake) {
            revert TaskManager.InsufficientStake(
                signedStake, (uint256(quorumBps) * ep.totalStake + BPS_DENOMINATOR - 1) / BPS_DENOMINATOR
            );
        }

        BLS.G1Point memory signingKey = nonSigners.length == 0 ? ep.apk : BLS12381.g1Sub(ep.apk, nonSignerKeys);
        if (!BLS12381.verify(signingKey, abi.encodePacked(digest), signature)) revert TaskManager.InvalidSignature();
    }

    /// @notice Whether bit `index` of `bitmap` is set (LSB first within each byte).
    function isSigner(bytes calldata bitmap, uint256 index) internal pure returns (bool) {
        return index >> 3 < bitmap.length && (uint8(bitmap[index >> 3]) >> (index & 7)) & 1 != 0;
    }

    /// @dev Checks the bitmap is canonical for `count` operators and that its zero bits are exactly
    /// the non-signers' indices; returns the number of signers. Word-wise popcount, so the cost
    /// is flat in the set size (32 bytes cover 256 operators) and linear in the non-signers.
    function countSigners(bytes calldata bitmap, uint256 count, TaskManager.NonSigner[] calldata nonSigners)
        internal
        pure
        returns (uint256 signers)
    {
        uint256 len = bitmap.length;
        // Canonical form (consensus/bitmap.ts): non-empty, no trailing zero byte, no byte past
        // the set, no bit at or beyond `count`. One encoding per signer set.
        if (len == 0 || len > (count + 7) / 8) revert TaskManager.BitmapMismatch();
        uint256 last = uint8(bitmap[len - 1]);
        if (last == 0) revert TaskManager.BitmapMismatch();
        uint256 bitsInLast = count - 8 * (len - 1);
        if (bitsInLast < 8 && (last >> bitsInLast) != 0) revert TaskManager.BitmapMismatch();

        for (uint256 offset; offset < len; offset += 32) {
            uint256 word;
            assembly ("memory-safe") {
                word := calldataload(add(bitmap.offset, offset))
            }
            uint256 remaining = len - offset;
            if (remaining < 32) word &= type(uint256).max << (8 * (32 - remaining));
            signers += popcount(word);
        }

        if (nonSigners.length != count - signers) revert TaskManager.BitmapMismatch();
        uint256 next; // smallest index the next non-signer may have: strictly ascending
        for (uint256 k; k < nonSigners.length; ++k) {
            uint256 index = nonSigners[k].index;
            if (index < next || index >= count) revert TaskManager.BitmapMismatch();
            if (index >> 3 < len && (uint8(bitmap[index >> 3]) >> (index & 7)) & 1 != 0) revert TaskManager.BitmapMismatch();
            next = index + 1;
        }
    }

    /// @dev SWAR popcount of a 256-bit word.
    function popcount(uint256 x) internal pure returns (uint256) {
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
