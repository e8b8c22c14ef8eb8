/**
 * contracts: the on-chain side of poi (DESIGN §9). Solidity sources in contracts/src, compiled into
 * generated/artifacts.ts; deployment, calldata builders, the operator-set commitment and the
 * registry reader in TypeScript; anvil for development and tests. `Deployment` is the one record
 * of where a network's contracts are: deployPoi returns it, checkDeployment checks it, deployment
 * files and the `chain` setting hold it (deploymentToJson / parseDeployment).
 *
 * Trust boundaries: readOperatorSet checks the chain's event against the stored epoch commitment
 * before returning a set; the calldata builders translate without judging (the contract judges).
 */
export * from './generated/artifacts.js'
export { startAnvil, anvilBinary, ANVIL_PRIVATE_KEYS, ANVIL_CHAIN_ID, ANVIL_HARDFORK, ChainError, type Anvil, type AnvilOptions } from './chain.js'
export {
  type Deployment, type DeploymentJson, type ParseDeploymentOptions, DEPLOYMENT_FIELDS, DeploymentFormatError, deploymentToJson, parseDeployment
} from './deployment.js'
export {
  deployPoi, deployParameters, estimateDeployPoiGas, DEFAULT_DEPLOY_PARAMETERS, POI_DEPLOY_ORDER, GOVERNED_CONTRACTS, DeployError, type DeployPoiParameters, type DeployPoiGasEstimate,
  BATCH_SETTLEMENT_LIBRARY, TASK_MANAGER_GOVERNANCE_LIBRARY, ZK_SETTLEMENT_LIBRARY, linkBytecode, taskManagerBytecode,
  type PoiContractName, type PoiDeployment
} from './deploy.js'
export {
  type G1Point, type G2Point, type OnChainOperatorSet, OperatorTreeError,
  publicKeyHash, operatorLeaf, operatorLeafOf, treeDepth, merkleRoot, merkleProof, verifyMerkleProof, toOnChainOperatorSet
} from './operator-tree.js'
export {
  type CertificateArgs, type NonSignerArgs, type MemberArgs, type SignedArgs, type EvidenceArgs, type AccusedArgs, type ConflictingCertificatesArgs,
  type CertificateAndAttestationArgs, type BatchStatementArgs, type BatchLeafAndAttestationArgs, type SignedBatchLeaf, type RegistrationArgs, type TaskArgs, type CertificateCalldata, CalldataError,
  nonSignerIndices, nonSignerArgs, certificateCalldata, qcCalldata, taskArgs, evidenceCalldata, conflictingCertificatesCalldata, certificateAndAttestationCalldata, batchLeafAndAttestationCalldata,
  registrationCalldata
} from './calldata.js'
export {
  type RegistryContracts, type OperatorRecord, type RegistryState, RegistryReadError, readCurrentEpoch, readQuorumBps, readOperatorSet, readOperatorRecord,
  readRegistryState, readWithdrawableAt
} from './registry-reader.js'
export { contractErrorName, contractErrorArgs } from './revert.js'
export {
  registerOperator, advanceEpoch, requestExit, withdrawStake, submitCertificate, submitEvidence, submitConflictingCertificates, submitCertificateAndAttestation, submitBatchLeafAndAttestation,
  simulateCertificate, simulateEvidence, simulateConflictingCertificates, simulateCertificateAndAttestation, simulateBatchLeafAndAttestation, mined, TransactionFailedError
} from './actions.js'
export {
  type ModelAccessPolicy, type OnChainModel, type ModelRegistryErrorReason, MODEL_ID_LENGTH, MODEL_ACCESS_POLICY_CODE, ModelRegistryError, ModelReadError,
  modelKeyOf, registerModel, estimateRegisterModel, setModelFee, setModelActive, setModelAccessPolicy, setModelAllowed, transferModelOwnership,
  readModel, isModelUsable, isModelAllowed, listModelIds,
  type ModelAccessTier, type RequesterAccess, type AccessPurchase, MODEL_ACCESS_TIERS, readAccess, hasModelAccess, setModelAccessTier, buyModelAccess,
  type ModelZkVerifier, setModelZkVerifier, readModelZkVerifier
} from './models.js'
export {
  type Groth16VerificationKey, type Groth16Proof, type ZkProof, type ProofCalldata, type CompiledVerifier, type VerifierProgress,
  ZK_PUBLIC_SIGNALS, ZK_SIGNAL_INDEX, VERIFY_CALL_GAS, GROTH16_VERIFIER_ABI, ZK_PROOF_ERRORS_ABI,
  verifierSource, verifierContractName, compileVerifier, deployVerifier, verifierMatchesKey, proofCalldata, verifyOnChain, checkZkProofOnChain, zkRejection
} from './zk-verifier.js'
export {
  type ZkResultArgs, type ZkResultOptions, type ZkSettlementOutcome, type ZkSettlementRejection, TASK_MANAGER_ZK_ABI, ZkSettlementRejectedError,
  zkResultArgs, zkResultHash, submitZkResult, submitCertificateWithProof, zkSettlementError
} from './zk-settlement.js'
export { type ZkOnChainRejection, ZK_ON_CHAIN_REJECTIONS, ZkVerifierBuildError, ZkProofFormatError, ZkProofRejectedOnChainError } from './zk-verifier-errors.js'
export {
  type ClaimArgs, type VaultAccount, type Reputation, PaymentError,
  requiredTaskFee, readPaymentAsset, deposit, requestWithdrawal, withdraw, withdrawCredit, readVault, readCredit, rewardClaims, readPendingRewards, claimRewards, readReputation
} from './payments.js'
export { checkDeployment, DeploymentMismatchError, type DeploymentContract, type DeploymentMismatchReason } from './check-deployment.js'
export {
  type Erc8004ErrorReason, type ValidationRequestArgs, type ValidationStatus, type ValidationSummary, Erc8004Error,
  MAX_VALIDATION_RESPONSE, POI_VALIDATION_TAG, POI_TASK_URI_PREFIX,
  poiTaskUri, registerAgent, requestValidation, respondToValidation, readValidationStatus, readValidationSummary
} from './erc8004.js'
export {
  type GovernedContract, type GovernedParameter, type ParameterValue, type GovernanceContracts, type Proposal, type ProposalState, type VoteSupport,
  type GovernorSettings, type ProposalStatus, GOVERNED_PARAMETERS, PROPOSAL_STATES, VOTE_SUPPORT, GovernanceError,
  isGovernedParameter, governedParameter, parseParameterValue, parameterKey, parameterContract, encodeParameterValue, parameterCall, parameterChangeProposal, unpauseProposal,
  setGuardianProposal, proposalIdOf, readParameter, readParameters, readGovernorSettings, readProposal, proposalState, propose, castVote, queueProposal,
  executeProposal, readVotes, delegateVotes, readPause, pauseNetwork, unpauseDirect, setGuardianDirect, setParameterDirect
} from './governance.js'
export {
  type BatchQuorumCertificate, type BatchCertificateArgs, type ModelChargeArgs, type TabChargeArgs, type ValidationArgs, type BatchCalldata, type OnChainTab,
  type BatchResultArgs, batchCalldata, simulateBatch, submitBatch, estimateBatchGas, readTab, isTabSequenceSettled, readBatchEpoch, hasBatchResult
} from './batches.js'
