// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {BLS12381} from "./BLS12381.sol";

/// @title BlsHarness
/// @notice Test-only contract: exposes the BLS12381 library as external view functions so the
/// off-chain and on-chain implementations can be compared vector by vector (test/bls-onchain.test.ts).
/// The *Gas variants return the gas the library call itself used (without calldata, ABI decoding
/// and the 21,000 transaction base), the figure that adds up inside TaskManager.
contract BlsHarness {
    function hashToG2(bytes calldata message) external view returns (BLS.G2Point memory) {
        return BLS12381.hashToG2(message);
    }

    function verify(BLS.G1Point calldata publicKey, bytes calldata message, BLS.G2Point calldata signature)
        external
        view
        returns (bool)
    {
        return BLS12381.verify(publicKey, message, signature);
    }

    function g1Add(BLS.G1Point calldata a, BLS.G1Point calldata b) external view returns (BLS.G1Point memory) {
        return BLS12381.g1Add(a, b);
    }

    function g1Negate(BLS.G1Point calldata p) external pure returns (BLS.G1Point memory) {
        return BLS12381.g1Negate(p);
    }

    function g1Sub(BLS.G1Point calldata a, BLS.G1Point calldata b) external view returns (BLS.G1Point memory) {
        return BLS12381.g1Sub(a, b);
    }

    function isInfinity(BLS.G1Point calldata p) external pure returns (bool) {
        return BLS12381.isInfinity(p);
    }

    function negG1Generator() external pure returns (BLS.G1Point memory) {
        return BLS12381.negG1Generator();
    }

    function signatureDst() external pure returns (bytes memory) {
        return BLS12381.SIGNATURE_DST;
    }

    function hashToG2Gas(bytes calldata message) external view returns (uint256 gasUsed) {
        bytes memory m = message;
        uint256 before = gasleft();
        BLS12381.hashToG2(m);
        gasUsed = before - gasleft();
    }

    function verifyGas(BLS.G1Point calldata publicKey, bytes calldata message, BLS.G2Point calldata signature)
        external
        view
        returns (bool valid, uint256 gasUsed)
    {
        BLS.G1Point memory pk = publicKey;
        BLS.G2Point memory sig = signature;
        bytes memory m = message;
        uint256 before = gasleft();
        valid = BLS12381.verify(pk, m, sig);
        gasUsed = before - gasleft();
    }
}
