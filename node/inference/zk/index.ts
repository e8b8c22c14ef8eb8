/**
 * The zero-knowledge tier's toolchain (issue 16, DESIGN §15), no network code: an int8 fully
 * connected ONNX model compiled to a Circom circuit (circuit.ts, toolchain.ts), the Poseidon
 * commitments of its tensors (commitments.ts), the circuit-specific setup as a verified chain of
 * contributions (ceremony.ts), and Groth16 proofs made and checked off-chain (proof.ts).
 *
 * Every proof has four public signals, in this order: the circuit id, the input commitment, the
 * output commitment and the prover (the address the TaskManager pays).
 */
export {
  PUBLIC_SIGNALS, CIRCUIT_INPUT_SIGNAL, CIRCUIT_OUTPUT_SIGNAL, MODEL_TEMPLATE, compileOnnxToCircom, circuitInputOf, circuitPublicSignals,
  type TensorBounds, type CompiledCircuit, type CircuitInput
} from './circuit.js'
export {
  COMMITMENT_BYTES_PER_ELEMENT, COMMITMENT_ELEMENTS_PER_HASH, tensorCommitmentBytes, packCommitmentElements, poseidonChain, commitTensor, toFieldElement,
  type CommittedDtype
} from './commitments.js'
export {
  compileCircuit, compileModelCircuit, computeWitness, writeWitnessFile, readSignalIndex, readCircuitOutputs, fieldToSigned,
  type CompileProgress, type CompileCircuitOptions, type CompiledCircuitFiles
} from './toolchain.js'
export { readR1csHeader, readPtauHeader, ptauPowerFor, type R1csHeader, type PtauHeader } from './headers.js'
export {
  MAX_LOCAL_PTAU_POWER, CEREMONY_RECORD_FILE, generatePtau, startCeremony, contribute, finalizeCeremony, verifyChain, readCeremonyRecord, parseCeremonyRecord,
  sha256File, localIdentity, type PtauRecord, type ContributionRecord, type CeremonyRecord, type CeremonyOptions
} from './ceremony.js'
export {
  prove, verifyProof, publicSignalsOf, parseZkProof, proofToBytes, proofFromBytes, parseVerificationKey, readVerificationKey,
  type ZkProof, type PublicSignals, type ExpectedSignals, type ProveOptions
} from './proof.js'
export { releaseCurve, type Groth16Proof, type VerificationKey } from './snarkjs.js'
export { ProofWorker, type ProvingFiles } from './proof-worker.js'
export { ProofVerifier, ProofVerifierError, acquireProofVerifier } from './proof-verifier.js'
export {
  UnsupportedOnnxError, SignalOutOfField, CircomError, WitnessError, CircuitTooLargeError, CeremonyError, ContributionRejectedError,
  ProofRejectedError, ProvingError, VerificationKeyError, type ContributionCheck, type ProofRejection
} from './errors.js'
