// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";

/// @title BLS12381
/// @notice BLS signatures of the Ethereum consensus scheme (public keys in G1, signatures in G2,
/// ciphersuite BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_) over the EIP-2537 precompiles, so a
/// signature made off-chain by the chainsafe bls library (blst) verifies here unchanged.
/// @dev Points use solady's flattened structs (EIP-2537 encoding: each Fp is 64 bytes big-endian,
/// the top 16 bytes zero; Fp2 is c0 then c1; the point at infinity is all zeros).
/// Why not solady's BLS.hashToG2: it hard-codes the NUL ciphersuite tag, and signatures here use
/// the POP tag (proofs of possession are what makes aggregate keys safe, DESIGN §3).
/// Every precompile call checks `returndatasize` too: on a chain without EIP-2537 a call to the
/// empty precompile address succeeds and returns nothing, which must not read as "valid".
library BLS12381 {
    /// @dev RFC 9380 §8.8.2 / Ethereum consensus: the domain separation tag of the POP ciphersuite.
    bytes internal constant SIGNATURE_DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    /// @notice A precompile refused an input: not on the curve, not in the prime-order subgroup,
    /// or a coordinate that is not a canonical field element.
    error InvalidPoint();

    /// @notice A hash-to-curve precompile call (SHA-256, MODEXP, MAP_FP2_TO_G2, G2ADD) failed;
    /// with valid inputs this only happens when the call ran out of gas.
    error HashToCurveFailed();

    // EIP-2537 precompile addresses (Prague).
    uint256 private constant G1ADD = 0x0b;
    uint256 private constant G2ADD = 0x0d;
    uint256 private constant PAIRING_CHECK = 0x0f;
    uint256 private constant MAP_FP2_TO_G2 = 0x11;
    uint256 private constant SHA256 = 0x02;
    uint256 private constant MODEXP = 0x05;

    // The field modulus p as two words (high word holds the top 16 of its 48 bytes).
    bytes32 private constant P_A = 0x000000000000000000000000000000001a0111ea397fe69a4b1ba7b6434bacd7;
    bytes32 private constant P_B = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    // -G1: the G1 generator with y replaced by p - y.
    bytes32 private constant NEG_G1_X_A = 0x0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0f;
    bytes32 private constant NEG_G1_X_B = 0xc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb;
    bytes32 private constant NEG_G1_Y_A = 0x00000000000000000000000000000000114d1d6855d545a8aa7d76c8cf2e21f2;
    bytes32 private constant NEG_G1_Y_B = 0x67816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca;

    // SIGNATURE_DST (43 bytes) followed by its length byte 0x2b: DST_prime of expand_message_xmd,
    // split in a 32-byte word and the 12 remaining bytes left-aligned.
    bytes32 private constant DST_PRIME_A = "BLS_SIG_BLS12381G2_XMD:SHA-256_S";
    bytes32 private constant DST_PRIME_B = "SWU_RO_POP_\x2b";
    /// @dev len(Z_pad ‖ …) overhead of msg_prime: 64 (Z_pad) + 2 (len_in_bytes) + 1 (0x00) + 44 (DST_prime).
    uint256 private constant MSG_PRIME_OVERHEAD = 111;
    /// @dev len(b ‖ I2OSP(i, 1) ‖ DST_prime) for b_1 … b_8.
    uint256 private constant B_I_INPUT_LENGTH = 77;

    /// @notice RFC 9380 hash_to_curve for BLS12381G2_XMD:SHA-256_SSWU_RO_ with SIGNATURE_DST:
    /// expand_message_xmd to 256 bytes, four field elements reduced mod p, MAP_FP2_TO_G2 on each
    /// Fp2 (the precompile also clears the cofactor), then G2ADD.
    function hashToG2(bytes memory message) internal view returns (BLS.G2Point memory result) {
        uint256 out;
        uint256 scratch;
        assembly ("memory-safe") {
            out := result
            scratch := mload(0x40)
        }
        if (!_hashToG2(message, out, scratch)) revert HashToCurveFailed();
    }

    /// @notice e(publicKey, H(message)) · e(-G1, signature) == 1, in one pairing-check call.
    /// Returns false for the point at infinity as key: it would "verify" the infinity signature
    /// for every message. Reverts InvalidPoint if either point is off the curve or outside the
    /// prime-order subgroup (the pairing precompile checks both).
    function verify(BLS.G1Point memory publicKey, bytes memory message, BLS.G2Point memory signature)
        internal
        view
        returns (bool valid)
    {
        if (isInfinity(publicKey)) return false;
        // Pairing input, written in place: pk (0x80) ‖ H(m) (0x100) ‖ -G1 (0x80) ‖ signature (0x100).
        uint256 input;
        assembly ("memory-safe") {
            input := mload(0x40)
        }
        if (!_hashToG2(message, input + 0x80, input + 0x300)) revert HashToCurveFailed();
        bool ok;
        assembly ("memory-safe") {
            mcopy(input, publicKey, 0x80)
            mstore(add(input, 0x180), NEG_G1_X_A)
            mstore(add(input, 0x1a0), NEG_G1_X_B)
            mstore(add(input, 0x1c0), NEG_G1_Y_A)
            mstore(add(input, 0x1e0), NEG_G1_Y_B)
            mcopy(add(input, 0x200), signature, 0x100)
            // Yul evaluates arguments right to left: the call runs before returndatasize is read.
            ok := and(eq(returndatasize(), 0x20), staticcall(gas(), PAIRING_CHECK, input, 0x300, 0x00, 0x20))
            valid := eq(mload(0x00), 1)
        }
        if (!ok) revert InvalidPoint();
    }

    /// @notice a + b. G1ADD checks that both are on the curve, not that they are in the subgroup.
    function g1Add(BLS.G1Point memory a, BLS.G1Point memory b) internal view returns (BLS.G1Point memory result) {
        bool ok;
        assembly ("memory-safe") {
            // result is the last allocation: its second half is free memory, so the precompile
            // input is built in place and the sum overwrites its first half.
            mcopy(result, a, 0x80)
            mcopy(add(result, 0x80), b, 0x80)
            ok := and(eq(returndatasize(), 0x80), staticcall(gas(), G1ADD, result, 0x100, result, 0x80))
        }
        if (!ok) revert InvalidPoint();
    }

    /// @notice -p = (x, p - y); the point at infinity (y = 0) stays itself.
    /// Reverts InvalidPoint if y is not a canonical field element (y ≥ p).
    function g1Negate(BLS.G1Point memory p) internal pure returns (BLS.G1Point memory result) {
        (bytes32 ya, bytes32 yb, bool ok) = _negateFp(p.y_a, p.y_b);
        if (!ok) revert InvalidPoint();
        result.x_a = p.x_a;
        result.x_b = p.x_b;
        result.y_a = ya;
        result.y_b = yb;
    }

    /// @notice a - b with one G1ADD call.
    function g1Sub(BLS.G1Point memory a, BLS.G1Point memory b) internal view returns (BLS.G1Point memory result) {
        (bytes32 ya, bytes32 yb, bool ok) = _negateFp(b.y_a, b.y_b);
        if (!ok) revert InvalidPoint();
        assembly ("memory-safe") {
            mcopy(result, a, 0x80)
            mcopy(add(result, 0x80), add(b, 0x00), 0x40)
            mstore(add(result, 0xc0), ya)
            mstore(add(result, 0xe0), yb)
            ok := and(eq(returndatasize(), 0x80), staticcall(gas(), G1ADD, result, 0x100, result, 0x80))
        }
        if (!ok) revert InvalidPoint();
    }

    /// @notice True for the EIP-2537 encoding of the point at infinity (all zeros).
    function isInfinity(BLS.G1Point memory p) internal pure returns (bool) {
        return (p.x_a | p.x_b | p.y_a | p.y_b) == bytes32(0);
    }

    /// @notice -G1, the negated generator used on the signature side of the pairing check.
    function negG1Generator() internal pure returns (BLS.G1Point memory) {
        return BLS.G1Point(NEG_G1_X_A, NEG_G1_X_B, NEG_G1_Y_A, NEG_G1_Y_B);
    }

    /// @dev (p - y) mod p over the two-word encoding; ok = false when y is not below p.
    function _negateFp(bytes32 ya, bytes32 yb) private pure returns (bytes32 na, bytes32 nb, bool ok) {
        // memory-safe (touches no memory): an unmarked block would stop via-IR from moving
        // variables to memory in every contract that uses the library.
        assembly ("memory-safe") {
            // canonical: ya < P_A, or ya == P_A and yb < P_B
            ok := or(lt(ya, P_A), and(eq(ya, P_A), lt(yb, P_B)))
            if iszero(or(ya, yb)) { ok := 1 } // 0 = -0; keeps infinity as infinity
            if and(ok, iszero(iszero(or(ya, yb)))) {
                nb := sub(P_B, yb)
                na := sub(sub(P_A, ya), lt(P_B, yb))
            }
        }
    }

    /// @dev H(message) written to out (0x100 bytes). Uses 0x4e1 bytes or msg_prime
    /// (message length + 0x46f bytes) of free memory from `scratch`, whichever is more; `out` must
    /// not overlap it. Returns false if a precompile call failed.
    /// Scratch layout: [0x000, 0x200) Q0 ‖ Q1 (G2ADD input); [0x200, 0x300) u0 ‖ u1 (the two Fp2
    /// elements); [0x300, 0x400) uniform bytes b_1 … b_8; [0x400, …) SHA-256 / MODEXP input.
    function _hashToG2(bytes memory message, uint256 out, uint256 scratch) private view returns (bool ok) {
        assembly ("memory-safe") {
            let buf := add(scratch, 0x400)
            let uniform := add(scratch, 0x300)

            // b_0 = H(Z_pad ‖ msg ‖ I2OSP(256, 2) ‖ I2OSP(0, 1) ‖ DST_prime)
            let len := mload(message)
            mstore(buf, 0)
            mstore(add(buf, 0x20), 0)
            mcopy(add(buf, 0x40), add(message, 0x20), len)
            let o := add(add(buf, 0x40), len)
            mstore(o, shl(232, 0x010000))
            mstore(add(o, 3), DST_PRIME_A)
            mstore(add(o, 0x23), DST_PRIME_B)
            ok := staticcall(gas(), SHA256, buf, add(len, MSG_PRIME_OVERHEAD), 0x00, 0x20)
            let b0 := mload(0x00)

            // b_1 = H(b_0 ‖ I2OSP(1, 1) ‖ DST_prime); b_i = H((b_0 xor b_(i-1)) ‖ I2OSP(i, 1) ‖ DST_prime)
            mstore(buf, b0)
            mstore8(add(buf, 0x20), 1)
            mstore(add(buf, 0x21), DST_PRIME_A)
            mstore(add(buf, 0x41), DST_PRIME_B)
            ok := and(ok, staticcall(gas(), SHA256, buf, B_I_INPUT_LENGTH, uniform, 0x20))
            for { let i := 2 } lt(i, 9) { i := add(i, 1) } {
                let previous := add(uniform, shl(5, sub(i, 2)))
                mstore(buf, xor(b0, mload(previous)))
                mstore8(add(buf, 0x20), i)
                ok := and(ok, staticcall(gas(), SHA256, buf, B_I_INPUT_LENGTH, add(previous, 0x20), 0x20))
            }

            // e_j = OS2IP(64 uniform bytes) mod p, through MODEXP with exponent 1:
            // input = len(B) = 64 ‖ len(E) = 1 ‖ len(M) = 64 ‖ B ‖ 0x01 ‖ p (left-padded to 64 bytes).
            mstore(buf, 0x40)
            mstore(add(buf, 0x20), 1)
            mstore(add(buf, 0x40), 0x40)
            mstore8(add(buf, 0xa0), 1)
            mstore(add(buf, 0xa1), P_A)
            mstore(add(buf, 0xc1), P_B)
            let fields := add(scratch, 0x200)
            for { let k := 0 } lt(k, 4) { k := add(k, 1) } {
                mcopy(add(buf, 0x60), add(uniform, shl(6, k)), 0x40)
                ok := and(ok, staticcall(gas(), MODEXP, buf, 0xe1, add(fields, shl(6, k)), 0x40))
            }

            // u0 = (e_0, e_1), u1 = (e_2, e_3) are already in EIP-2537 Fp2 order (c0 ‖ c1).
            ok := and(ok, and(eq(returndatasize(), 0x100), staticcall(gas(), MAP_FP2_TO_G2, fields, 0x80, scratch, 0x100)))
            ok := and(
                ok,
                and(eq(returndatasize(), 0x100), staticcall(gas(), MAP_FP2_TO_G2, add(fields, 0x80), 0x80, add(scratch, 0x100), 0x100))
            )
            ok := and(ok, and(eq(returndatasize(), 0x100), staticcall(gas(), G2ADD, scratch, 0x200, out, 0x100)))
        }
    }
}
