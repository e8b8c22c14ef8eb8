// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice The function a snarkjs Groth16 verifier (templates/verifier_groth16.sol.ejs) exposes for
/// a circuit with poi's four public signals: circuitId, inputCommitment, outputCommitment, prover
/// (issue 16; prover, the payee's address, binds the proof to who is paid for it).
/// One verifier per circuit, generated from its verification key (contracts/zk-verifier.ts).
interface IGroth16Verifier {
    function verifyProof(uint256[2] calldata a, uint256[2][2] calldata b, uint256[2] calldata c, uint256[4] calldata signals)
        external
        view
        returns (bool);
}

/// @title ZkProofs
/// @notice Checks a Groth16 proof of inference against the verifier and circuit id registered for a
/// model, and turns every way it can fail into a named revert. The snarkjs verifier itself never
/// reverts: it returns false for a bad proof, for a public signal outside the field and for a
/// pairing that ran out of gas alike, so `eth_estimateGas` on a bare call settles on a gas limit at
/// which the pairing fails (issue 16 measured 33,930). Here the verifier gets a fixed stipend, and
/// a call left with less gas than that reverts ZkVerifierOutOfGas instead of reporting an invalid
/// proof, so estimates converge on a limit that verifies.
/// @dev Internal functions: inlined into the caller (ModelRegistry.verifyZkProof), no deployment.
library ZkProofs {
    /// @notice BN254's scalar field r: every public signal is an element of it.
    uint256 internal constant FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice poi's circuits declare exactly these public inputs, in this order.
    uint256 internal constant CIRCUIT_ID_SIGNAL = 0;
    uint256 internal constant INPUT_COMMITMENT_SIGNAL = 1;
    uint256 internal constant OUTPUT_COMMITMENT_SIGNAL = 2;
    /// @notice The payee's address as a field element (uint160): a proof copied from the mempool
    /// pays whoever it names, not its copier.
    uint256 internal constant PROVER_SIGNAL = 3;
    uint256 internal constant SIGNALS = 4;
    /// @notice Gas the verifier call is given. A 4-signal snarkjs verifier needs about 211,000 to
    /// answer true (anvil, prague; test/zk-verifier.test.ts measures it): four ecMul + ecAdd (4 × 6,150),
    /// a 4-pair pairing (45,000 + 4 × 34,000), the 2,000 it keeps back from each precompile call and
    /// its own code; the rest (about 23%) is headroom for a repricing of the BN254 precompiles. Unused
    /// gas returns to the caller.
    uint256 internal constant VERIFY_GAS = 260_000;
    /// @notice gasleft() this library asks for before the call: the stipend, the 1/64 that EIP-150
    /// keeps back from a call, and the call's own cost (a cold verifier account, 2,600, plus the
    /// calldata copy), rounded up.
    uint256 internal constant VERIFY_GAS_NEEDED = VERIFY_GAS + VERIFY_GAS / 63 + 5_000;

    /// @notice The model has no zk verifier registered (ModelRegistry.setZkVerifier).
    error ZkVerifierNotRegistered(bytes32 modelKey);
    /// @notice Public signal `index` is `value`, not below the field's modulus.
    error ZkSignalOutOfField(uint256 index, uint256 value);
    /// @notice The proof's circuitId signal is `proved`; the model's registered circuit is `registered`.
    error ZkCircuitMismatch(uint256 registered, uint256 proved);
    /// @notice The call had `gasLeft` gas before the verifier; it needs `gasNeeded` (raise the gas limit).
    error ZkVerifierOutOfGas(uint256 gasLeft, uint256 gasNeeded);
    /// @notice The model's verifier rejected the proof (or returned no answer).
    error InvalidZkProof(bytes32 modelKey);

    /// @notice Reverts unless (a, b, c) proves `signals` for the circuit `circuitId` under
    /// `verifier`, the pair registered for the model with key `modelKey` (address(0): none).
    function check(
        bytes32 modelKey,
        address verifier,
        uint256 circuitId,
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[4] calldata signals
    ) internal view {
        if (verifier == address(0)) revert ZkVerifierNotRegistered(modelKey);
        for (uint256 i = 0; i < SIGNALS; ++i) {
            if (signals[i] >= FIELD) revert ZkSignalOutOfField(i, signals[i]);
        }
        if (signals[CIRCUIT_ID_SIGNAL] != circuitId) revert ZkCircuitMismatch(circuitId, signals[CIRCUIT_ID_SIGNAL]);
        uint256 gasLeft = gasleft();
        if (gasLeft < VERIFY_GAS_NEEDED) revert ZkVerifierOutOfGas(gasLeft, VERIFY_GAS_NEEDED);
        bytes memory data = abi.encodeCall(IGroth16Verifier.verifyProof, (a, b, c, signals));
        bool ok;
        uint256 answer;
        // Only the first word of the answer is read: a verifier cannot make this call pay for
        // copying a large return.
        assembly ("memory-safe") {
            ok := staticcall(VERIFY_GAS, verifier, add(data, 0x20), mload(data), 0, 0x20)
            answer := mload(0)
            if lt(returndatasize(), 0x20) { ok := 0 }
        }
        if (!ok || answer != 1) revert InvalidZkProof(modelKey);
    }
}
