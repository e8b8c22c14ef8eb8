// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {BatchSettlement} from "./BatchSettlement.sol";
import {IValidationRegistry} from "./IValidationRegistry.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {OperatorRegistry, OperatorTree, PoiMessages} from "./OperatorRegistry.sol";
import {PaymentVault} from "./PaymentVault.sol";
import {QuorumCertificates} from "./QuorumCertificates.sol";
import {SettlementRules} from "./SettlementRules.sol";
import {TaskManagerGovernance} from "./TaskManagerGovernance.sol";
import {ZkSettlement} from "./ZkSettlement.sol";

/// @title TaskManager
/// @notice Verifies quorum certificates, stores each task's certified result and settles its fee.
/// The signing key is the epoch's aggregate key minus the non-signers' keys, so the cost grows
/// with the number of non-signers (each proven against the epoch root), not with the size of the
/// operator set. A certificate carries the task its requester signed (EIP-712; the task id is the
/// digest): the fee is debited from the requester's deposit (PaymentVault) and split between the
/// model owner, the treasury and the signers; signers are paid through a per-epoch reward-per-stake
/// index and claim with their leaf of the epoch (claimRewards), non-signers through an exclusion
/// record each, so nothing is written per signer. Batches (issue 15, submitBatch): one certificate
/// over a Merkle root of many results, paid from the requesters' credit tabs (one EIP-712 voucher
/// per requester per batch), run by the linked BatchSettlement library; any leaf is proved with
/// hasResult(taskId, result, proof). Tab tasks (nonce < TAB_SEQUENCE_LIMIT) settle only in
/// batches, other tasks only singly, so no task settles twice. Tasks of the zk tier (issue 16)
/// settle on a Groth16 proof (submitZkResult) and pay its prover, tasks of tier both on a
/// certificate and a proof of the same result (submitCertificateWithProof): the linked
/// ZkSettlement library runs both.
/// @dev Governance: the owner (the timelock once deployPoi hands it over) changes the settlement
/// parameters within bounds (setParameter, run by the linked TaskManagerGovernance library); the
/// registry's pause (settlementEpoch) stops settlement. Constants and rules both settlement paths
/// share are SettlementRules'.
contract TaskManager is PaymentVault, EIP712, Ownable {
    using SafeERC20 for IERC20;

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

    /// @notice The task as its requester signed it (protocols/wire/task.ts TASK_TYPED_DATA_TYPES),
    /// the dynamic `input` and `params` as their keccak256 (what EIP-712 encodes for `bytes`).
    struct Task {
        bytes modelId;
        bytes32 inputHash;
        /// @dev bytes32(0) when the input is inline.
        bytes32 inputRef;
        bytes32 paramsHash;
        /// @dev wei of the payment asset
        uint256 fee;
        /// @dev unix milliseconds
        uint64 deadline;
        uint16 quorumBps;
        uint64 nonce;
        address requester;
        /// @dev ERC-8004 request hash the TaskManager answers on acceptance; bytes32(0) = none.
        bytes32 validationRequest;
        /// @dev What proves the result (issue 16): 0 replicated (this certificate), 1 zk (a proof), 2 both.
        uint8 tier;
        /// @dev Poseidon commitment of the input (a zk proof's public signal); bytes32(0) when replicated.
        bytes32 inputCommitment;
    }

    /// @notice A zk result (issue 16): a Groth16 proof that the model's circuit `circuitId` maps the
    /// task's inputCommitment to `outputCommitment`, made for `prover` (the payee: the proof's 4th
    /// public signal, so a copied proof still pays its prover). a, b, c as the snarkjs verifier
    /// takes them (b's Fp2 coordinates as [c1, c0]; contracts/zk-verifier.ts proofCalldata).
    struct ZkResult {
        uint256[2] a;
        uint256[2][2] b;
        uint256[2] c;
        uint256 circuitId;
        /// @dev Poseidon commitment of the output; the stored result's resultHash is bytes32 of it.
        uint256 outputCommitment;
        /// @dev Stream reference of the output, as a certificate's.
        bytes32 outputRef;
        address prover;
    }

    /// @notice A batch's quorum certificate (issue 15): operators signed
    /// keccak256(abi.encode("POI_BATCH_V1", chainid, this, root, epoch, summaryHash)) with
    /// summaryHash = keccak256(abi.encode(leafCount, batchRef, tabs, validations)) (consensus/batch.ts).
    struct BatchCertificate {
        /// @dev Merkle root (OpenZeppelin StandardMerkleTree shape) over the leaves
        /// (taskId, resultHash, outputRef), ascending by task id.
        bytes32 root;
        uint64 epoch;
        /// @dev Number of leaves: the total popcount of every tab's sequenceBits.
        uint32 leafCount;
        /// @dev Stream reference of the batch's leaves (where anyone fetches them to build proofs); 0 = none.
        bytes32 batchRef;
        bytes signerBitmap;
        BLS.G2Point signature;
    }

    /// @notice One requester's charges for one model in a batch.
    struct ModelCharge {
        /// @dev keccak256(modelId), as the ModelRegistry keys models.
        bytes32 modelKey;
        uint32 count;
        /// @dev Sum of the tasks' fees, wei.
        uint256 fees;
        /// @dev Earliest and latest task deadline among them, unix seconds.
        uint64 firstDeadline;
        uint64 lastDeadline;
    }

    /// @notice One requester's part of a batch: its highest voucher (TabVoucher, signed under this
    /// contract's EIP-712 domain) and the tab sequences and charges the batch settles for it.
    struct TabCharge {
        address requester;
        uint256 cumulative;
        uint64 sequence;
        bytes signature;
        /// @dev Bit i of sequenceBits[k] set ⇔ sequence (firstWord + k) * 256 + i is settled here.
        uint64 firstWord;
        uint256[] sequenceBits;
        /// @dev Ascending by modelKey, strictly.
        ModelCharge[] models;
    }

    /// @notice An ERC-8004 response a batch leaf asks for.
    struct Validation {
        bytes32 taskId;
        bytes32 requestHash;
        bytes32 resultHash;
    }

    /// @notice One epoch's leaf of the caller, to claim that epoch's rewards with.
    struct Claim {
        uint64 epoch;
        uint32 index;
        BLS.G1Point pubkey;
        uint256 stake;
        bytes32[] proof;
    }

    /// @notice Deployment parameters of the payments (contracts/deploy.ts documents each).
    struct PaymentConfig {
        address asset;
        address treasury;
        uint16 protocolFeeBps;
        uint256 minTaskFee;
        uint64 maxTaskLife;
        uint64 settlementWindow;
        uint64 withdrawalDelay;
        address validationRegistry;
    }

    /// @dev One slot per epoch: the signers' reward per unit of stake (× REWARD_SCALE) summed over
    /// the epoch's certificates, and how many certificates the epoch has. Written once per certificate.
    struct EpochRewards {
        uint192 index;
        uint64 certificates;
    }

    /// @dev One slot per (epoch, non-signer): the index increments of the certificates it missed
    /// (excluded from its claim) and how many it missed.
    struct Missed {
        uint192 excluded;
        uint64 count;
    }

    /// @dev DESIGN §5: at least 3 signers whatever their stake (consensus DEFAULT_MIN_SIGNERS).
    uint256 public constant MIN_SIGNERS = QuorumCertificates.MIN_SIGNERS;
    /// @notice Fixed-point scale of the reward-per-stake index (SettlementRules says why 1e27).
    uint256 public constant REWARD_SCALE = SettlementRules.REWARD_SCALE;
    /// @notice ERC-8004 response a certified task gets (0..100 scale: fully validated).
    uint8 public constant VALIDATION_RESPONSE = SettlementRules.VALIDATION_RESPONSE;
    /// @notice Gas the validation registry may use per response (SettlementRules says why).
    uint256 public constant VALIDATION_GAS_LIMIT = SettlementRules.VALIDATION_GAS_LIMIT;
    /// @notice EIP-712 type of a task; protocols/wire/task.ts spells the same type.
    bytes32 public constant TASK_TYPEHASH = SettlementRules.TASK_TYPEHASH;

    /// @notice EIP-712 type of a tab voucher; protocols/wire/voucher.ts spells the same type.
    bytes32 public constant VOUCHER_TYPEHASH = SettlementRules.VOUCHER_TYPEHASH;
    /// @notice Tasks whose nonce is below this are tab tasks, which settle only in a batch (the
    /// nonce is their sequence in the requester's tab); other tasks settle only singly.
    uint64 public constant TAB_SEQUENCE_LIMIT = SettlementRules.TAB_SEQUENCE_LIMIT;

    // The bounds governance may set the parameters within (TaskManagerGovernance says why each is what it is).

    /// @notice Lowest network quorum governance may set: two thirds of the stake.
    uint16 public constant MIN_QUORUM_BPS = TaskManagerGovernance.MIN_QUORUM_BPS;
    /// @notice Highest protocol fee governance may set.
    uint16 public constant MAX_PROTOCOL_FEE_BPS = TaskManagerGovernance.MAX_PROTOCOL_FEE_BPS;
    /// @notice Shortest maxTaskLife governance may set.
    uint64 public constant MIN_TASK_LIFE = TaskManagerGovernance.MIN_TASK_LIFE;
    /// @notice Longest maxTaskLife and settlementWindow governance may set.
    uint64 public constant MAX_TASK_WINDOW = TaskManagerGovernance.MAX_TASK_WINDOW;
    /// @notice Shortest settlementWindow governance may set.
    uint64 public constant MIN_SETTLEMENT_WINDOW = TaskManagerGovernance.MIN_SETTLEMENT_WINDOW;
    /// @notice Longest withdrawalDelay governance may set.
    uint64 public constant MAX_WITHDRAWAL_DELAY = TaskManagerGovernance.MAX_WITHDRAWAL_DELAY;

    OperatorRegistry public immutable registry;
    ModelRegistry public immutable models;
    /// @notice ERC-8004 Validation Registry answered on acceptance; address(0) = none.
    IValidationRegistry public immutable validationRegistry;

    /// @dev Governed parameters (setParameter), in two slots that every certificate reads; each has
    /// its getter below. The payment asset, registry and model registry stay immutable (changing
    /// them would orphan balances, snapshots and fees already recorded).
    TaskManagerGovernance.Parameters internal _params;

    /// @dev taskId → keccak256(abi.encode(resultHash, outputRef, epoch)); zero = no result yet.
    /// One slot instead of three; the values themselves are in the CertificateAccepted event, and
    /// `hasResult` checks any claimed triple against this.
    mapping(bytes32 => bytes32) internal _results;
    mapping(uint64 => EpochRewards) internal _epochRewards;
    mapping(uint64 => mapping(address => Missed)) internal _missed;
    /// @dev epoch → operator → the index up to which it has claimed (net of its exclusions).
    mapping(uint64 => mapping(address => uint256)) internal _claimedIndex;
    /// @dev Batches: root → epoch, requesters' tabs and settled-sequence bitmaps (BatchSettlement).
    BatchSettlement.State internal _batches;

    event CertificateAccepted(
        bytes32 indexed taskId, bytes32 resultHash, bytes32 outputRef, uint64 epoch, uint256 signedStake, address submitter
    );
    /// @notice The fee split of an accepted certificate: `charged` (≤ fee) left the requester's
    /// deposit; the model owner, the treasury and the epoch's signers got the three shares.
    event TaskCharged(
        bytes32 indexed taskId,
        address indexed requester,
        uint256 charged,
        address modelOwner,
        uint256 ownerShare,
        uint256 protocolShare,
        uint256 signersShare
    );
    event RewardsClaimed(address indexed operator, uint256 amount);
    /// @notice A batch's certificate was accepted: every leaf of `root` is provable with hasResult.
    event BatchAccepted(bytes32 indexed root, uint64 epoch, uint32 leafCount, bytes32 batchRef, uint256 signedStake, address submitter);
    /// @notice A batch charged `charge` to `requester`'s deposit under its voucher (`sequence`, `cumulative`).
    event TabSettled(address indexed requester, uint64 sequence, uint256 cumulative, uint256 charge);
    /// @notice A batch credited a model owner its fees for all its tasks in the batch.
    event BatchOwnerCredited(bytes32 indexed root, address indexed owner, uint256 ownerShare);
    /// @notice A batch's fee split: `charged` left the requesters' deposits; owners, treasury and signers got the shares.
    event BatchCharged(bytes32 indexed root, uint256 charged, uint256 ownerShares, uint256 protocolShare, uint256 signersShare);
    /// @notice A zk result's proof verified for `taskId` (submitZkResult, or beside a certificate
    /// in submitCertificateWithProof); `submitter` sent it, `prover` is paid for it.
    event ZkResultAccepted(bytes32 indexed taskId, uint256 outputCommitment, bytes32 outputRef, address indexed prover, address submitter);
    /// @notice The prover of an accepted zk result was credited `amount` (withdrawCredit).
    event ProverPaid(bytes32 indexed taskId, address indexed prover, uint256 amount);
    /// @notice The validation registry refused or failed the response; settlement went on.
    event ValidationResponseFailed(bytes32 indexed taskId, bytes32 indexed requestHash, bytes reason);
    /// @notice A governed parameter changed (`name` as bytes32 of its ASCII name, e.g. "quorumBps";
    /// the treasury as uint256(uint160(address))).
    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);

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
    /// @notice The task's EIP-712 digest on this chain and contract is not the certificate's task id.
    error TaskIdMismatch(bytes32 taskId, bytes32 digest);
    /// @notice The signature is malformed, malleable (high s) or not by the task's requester.
    error InvalidRequesterSignature(address requester);
    /// @notice fee < the model's fee + minTaskFee.
    error FeeBelowMinimum(uint256 fee, uint256 required);
    /// @notice The deadline (ms) plus settlementWindow has passed at `nowMs`.
    error TaskExpired(uint64 deadline, uint256 nowMs);
    /// @notice The deadline (ms) lies more than maxTaskLife ahead; `latest` is the furthest allowed.
    error DeadlineTooFar(uint64 deadline, uint256 latest);
    /// @notice A deposit could be withdrawn before a task it must pay is settled: withdrawalDelay
    /// must exceed maxTaskLife + settlementWindow (`minimum`).
    error WithdrawalDelayTooShort(uint64 withdrawalDelay, uint256 minimum);
    error ZeroAddress();
    /// @notice The claim's leaf is not the caller's in that epoch (another operator's, or a bad proof).
    error NotCallersLeaf(uint64 epoch, uint32 index);
    error NothingToClaim();
    error InvalidEpochRange(uint64 fromEpoch, uint64 toEpoch);
    /// @notice setParameter knows no parameter of that name here.
    error UnknownParameter(bytes32 name);
    /// @notice `value` is outside [min, max] for parameter `name`.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice A network quorum below MIN_QUORUM_BPS (two thirds).
    error QuorumBelowFloor(uint256 quorumBps, uint16 floor);
    /// @notice A protocol fee above MAX_PROTOCOL_FEE_BPS.
    error ProtocolFeeAboveCap(uint256 protocolFeeBps, uint16 cap);
    /// @notice Settlement is paused by the guardian (OperatorRegistry.pause); the certificate can be posted after unpause.
    error Paused();
    /// @notice collectAccessPayment is the ModelRegistry's alone.
    error NotModelRegistry(address caller);
    // Raised by ModelRegistry.useAccess inside submitCertificate (same selectors), declared here so
    // the TaskManager's ABI names them: the requester lost access to the model between the
    // operators' acceptance and settlement; the certificate is refused and nothing is paid.
    error NotAllowed(bytes32 modelKey, address requester);
    error SubscriptionEnded(bytes32 modelKey, address requester, uint64 expiresAt, uint64 atTime);
    error NoCreditsLeft(bytes32 modelKey, address requester);
    /// @notice A tab task (nonce < TAB_SEQUENCE_LIMIT) settles only in a batch (submitBatch).
    error TabTaskSettlesInBatch(bytes32 taskId, uint64 nonce);
    /// @notice A zk or both task (issue 16) does not settle on a quorum certificate alone.
    error TaskNeedsProof(bytes32 taskId, uint8 tier);
    /// @notice A replicated task (tier 0) settles on a certificate (submitCertificate), not with a proof.
    error TaskNotZkTier(bytes32 taskId, uint8 tier);
    /// @notice A task of tier both settles on a certificate and a proof (submitCertificateWithProof),
    /// a task of tier zk on a proof alone (submitZkResult).
    error WrongProofTier(bytes32 taskId, uint8 tier);
    /// @notice Tier both: the certificate's result hash is not the proof's output commitment.
    error ZkResultMismatch(bytes32 qcResult, bytes32 proofResult);
    /// @notice The voucher is not `requester`'s signature for this TaskManager and chain (another
    /// requester's, another TaskManager's, or altered).
    error InvalidVoucherSignature(address requester);
    /// @notice The voucher is not newer than the last one settled (an older voucher after a newer one, or the same twice).
    error StaleVoucher(uint64 sequence, uint64 lastSequence);
    /// @notice The voucher's sequence is not the highest sequence the tab settles (`highest`), or is not below TAB_SEQUENCE_LIMIT.
    error VoucherSequenceMismatch(uint64 sequence, uint256 highest);
    /// @notice What the tab would have been charged in total exceeds what the voucher authorises.
    error VoucherExceeded(uint256 cumulative, uint256 settledPlusCharge);
    /// @notice The requester's deposit does not cover its charge in the batch (nothing is charged partially).
    error InsufficientDeposit(address requester, uint256 available, uint256 charge);
    /// @notice The tab sequence (a tab task) is already settled.
    error TaskAlreadySettled(address requester, uint256 sequence);
    /// @notice Leaf counts disagree: `expected` (the bitmaps' or the certificate's) against `actual` (the charges' or the bitmaps').
    error LeafCountMismatch(uint256 expected, uint256 actual);
    /// @notice Tabs must ascend strictly by requester.
    error TabsOutOfOrder(address requester);
    /// @notice A tab's model charges must ascend strictly by model key.
    error ModelsOutOfOrder(address requester, bytes32 modelKey);
    /// @notice A tab without sequences or models, with a zero last word, sequence 0 or a zero count.
    error MalformedTab(address requester);

    /// @dev The deployer owns the TaskManager until deployPoi transfers it to the timelock.
    /// Deploy-time delays are the deployer's choice (tests use short ones); the quorum floor, the
    /// fee cap, the withdrawal rule and the epoch-age rule hold here and in setParameter.
    constructor(address registry_, address models_, uint16 quorumBps_, uint64 maxEpochAge_, PaymentConfig memory payment)
        PaymentVault(payment.asset, payment.withdrawalDelay)
        EIP712("poi", "1") // protocols/wire/task.ts TASK_DOMAIN_NAME, TASK_DOMAIN_VERSION
        Ownable(msg.sender)
    {
        TaskManagerGovernance.checkQuorumBps(quorumBps_);
        TaskManagerGovernance.checkProtocolFeeBps(payment.protocolFeeBps);
        if (registry_ == address(0) || models_ == address(0) || payment.treasury == address(0)) revert ZeroAddress();
        TaskManagerGovernance.checkWithdrawalDelay(payment.withdrawalDelay, payment.maxTaskLife, payment.settlementWindow);
        registry = OperatorRegistry(registry_);
        TaskManagerGovernance.checkEpochAge(OperatorRegistry(registry_), maxEpochAge_);
        models = ModelRegistry(models_);
        _params = TaskManagerGovernance.Parameters({
            treasury: payment.treasury,
            quorumBps: quorumBps_,
            protocolFeeBps: payment.protocolFeeBps,
            maxEpochAge: maxEpochAge_,
            minTaskFee: SafeCast.toUint128(payment.minTaskFee),
            maxTaskLife: payment.maxTaskLife,
            settlementWindow: payment.settlementWindow
        });
        validationRegistry = IValidationRegistry(payment.validationRegistry);
    }

    /// @notice Receives protocolFeeBps of each fee after the model owner's part (pulled with withdrawCredit).
    function treasury() external view returns (address) {
        return _params.treasury;
    }

    /// @notice The network's quorum, basis points of the epoch's stake (a task may ask for more).
    function quorumBps() external view returns (uint16) {
        return _params.quorumBps;
    }

    function protocolFeeBps() external view returns (uint16) {
        return _params.protocolFeeBps;
    }

    /// @notice A certificate's epoch may be at most this many epochs behind the current one.
    function maxEpochAge() external view returns (uint64) {
        return _params.maxEpochAge;
    }

    /// @notice The network's minimum fee per task, wei, on top of the model's fee.
    function minTaskFee() external view returns (uint128) {
        return _params.minTaskFee;
    }

    /// @notice Seconds a task's deadline may lie ahead of the block that settles it.
    function maxTaskLife() external view returns (uint64) {
        return _params.maxTaskLife;
    }

    /// @notice Seconds after a task's deadline during which its certificate is still accepted.
    function settlementWindow() external view returns (uint64) {
        return _params.settlementWindow;
    }

    /// @notice Governance: sets one parameter by name ("quorumBps", "maxEpochAge", "treasury" as
    /// uint160, "protocolFeeBps", "minTaskFee", "maxTaskLife", "settlementWindow",
    /// "withdrawalDelay"), each within its bounds whoever proposes it. A change applies to the
    /// next certificate (and, for withdrawalDelay, the next withdrawal request).
    function setParameter(bytes32 name, uint256 value) external onlyOwner {
        withdrawalDelay = TaskManagerGovernance.setParameter(_params, registry, withdrawalDelay, name, value);
    }

    /// @notice Verify `qc` for `task`, record its result and settle the task's fee. Returns false,
    /// changing nothing, when the task already has a result: aggregators race, and the loser's
    /// transaction should not revert.
    /// @param nonSigners Exactly the operators whose bit is zero, ascending by index, each with its
    /// leaf proof against the epoch root (contracts/calldata.ts builds them).
    /// @param task The task whose EIP-712 digest is qc.taskId.
    /// @param requesterSig The requester's 65-byte EIP-712 signature of `task` (low s).
    function submitCertificate(
        Certificate calldata qc,
        NonSigner[] calldata nonSigners,
        Task calldata task,
        bytes calldata requesterSig
    ) external returns (bool accepted) {
        if (_results[qc.taskId] != 0) return false;
        if (task.tier != SettlementRules.TIER_REPLICATED) revert TaskNeedsProof(qc.taskId, task.tier);
        (address modelOwner, uint256 modelFee) = SettlementRules.checkTask(models, _params, qc.taskId, taskDigest(task), task, requesterSig);

        _checkEpoch(qc.epoch);
        uint16 networkBps = _params.quorumBps;
        uint16 bps = task.quorumBps > networkBps ? task.quorumBps : networkBps;
        uint256 signedStake = QuorumCertificates.verify(registry.getEpoch(qc.epoch), address(this), bps, qc, nonSigners);

        _results[qc.taskId] = resultCommitment(Result({resultHash: qc.resultHash, outputRef: qc.outputRef, epoch: qc.epoch}));
        emit CertificateAccepted(qc.taskId, qc.resultHash, qc.outputRef, qc.epoch, signedStake, msg.sender);
        SettlementRules.settleSingle(
            _accounts, _shortfalls, _credits, _params, _epochRewards, _missed,
            qc.taskId, qc.epoch, nonSigners, task.requester, task.fee, modelOwner, modelFee, signedStake, address(0)
        );
        if (task.validationRequest != 0 && address(validationRegistry) != address(0)) {
            _respond(qc.taskId, task.validationRequest, qc.resultHash);
        }
        return true;
    }

    /// @notice Verify the zk result `r` for the zk-tier `task`, record its result (resultHash =
    /// bytes32(r.outputCommitment), r.outputRef, the current epoch) and settle the task's fee: the
    /// requester is charged as for a certificate (what its deposit holds, the rest recorded as a
    /// shortfall), the model owner and the treasury get their shares as for a certificate, and the
    /// rest (the signers' share of a certificate) is credited to r.prover (withdrawCredit). Returns
    /// false, changing nothing, when the task already has a result (provers race). Reverts as
    /// submitCertificate does for the task (TabTaskSettlesInBatch, InvalidRequesterSignature,
    /// TaskExpired, DeadlineTooFar, NotAllowed, FeeBelowMinimum, ...), TaskNotZkTier for a
    /// replicated task, WrongProofTier for a task of tier both, ZeroAddress for r.prover 0, Paused
    /// while settlement is paused, and with ZkProofs' errors (InvalidZkProof, ZkCircuitMismatch,
    /// ZkVerifierNotRegistered, ZkSignalOutOfField, ZkVerifierOutOfGas) for a proof the model's
    /// verifier does not accept for [r.circuitId, task.inputCommitment, r.outputCommitment, r.prover].
    function submitZkResult(Task calldata, bytes calldata, ZkResult calldata) external returns (bool accepted) {
        // returns from inside with ZkSettlement.submitZkResult's answer
        _runZkSettlement(ZkSettlement.submitZkResult.selector, 2);
    }

    /// @notice For a task of tier both: verify `qc` as submitCertificate does and `r` as
    /// submitZkResult does, require both to name the same result (qc.resultHash ==
    /// bytes32(r.outputCommitment), else ZkResultMismatch), store the certificate's result and
    /// settle the fee as a certificate's, except that the signers' share is split: half, rounded
    /// down, is credited to r.prover (withdrawCredit), the rest goes to the signers pro rata to
    /// stake (the reward index). Half and half because the task bought both guarantees and
    /// neither does the larger part of securing the result. Returns false when the task already
    /// has a result. Reverts TaskNotZkTier for a replicated task, WrongProofTier for a zk task.
    function submitCertificateWithProof(Certificate calldata, NonSigner[] calldata, Task calldata, bytes calldata, ZkResult calldata)
        external
        returns (bool accepted)
    {
        // returns from inside with ZkSettlement.submitCertificateWithProof's answer
        _runZkSettlement(ZkSettlement.submitCertificateWithProof.selector, 4);
    }

    /// @notice Verify a batch certificate and settle the batch from its requesters' tabs (issue 15):
    /// one pairing for every leaf, one voucher signature per requester. Returns false, changing
    /// nothing, when the root is already stored (aggregators race; the loser does not revert).
    /// The quorum is the network's quorumBps (operators batch no task that asked for more).
    /// A duplicated, missing or extra leaf changes the root (a reordering too, unless the
    /// commutative node hash keeps the root: then it is the batch signed), and any change to the
    /// tabs or validations the summary: the quorum signed neither, so either reverts InvalidSignature.
    /// Bad tabs revert with TabsOutOfOrder, InvalidVoucherSignature, StaleVoucher,
    /// VoucherSequenceMismatch, TaskAlreadySettled, MalformedTab, ModelsOutOfOrder,
    /// LeafCountMismatch, FeeBelowMinimum, TaskExpired, DeadlineTooFar, NotAllowed,
    /// SubscriptionEnded, NoCreditsLeft, VoucherExceeded or InsufficientDeposit; nothing is charged.
    /// @param nonSigners As for submitCertificate.
    /// @param tabs Ascending by requester, strictly; each with its highest voucher in the batch.
    /// @param validations The ERC-8004 requests of the batch's leaves, answered on acceptance.
    function submitBatch(
        BatchCertificate calldata qc,
        NonSigner[] calldata nonSigners,
        TabCharge[] calldata tabs,
        Validation[] calldata validations
    ) external returns (bool accepted) {
        if (_batches.epochOf[qc.root] != 0) return false;
        _checkEpoch(qc.epoch);
        BatchSettlement.settle(
            _batches, _params, _accounts, _credits, _epochRewards, _missed, _refs(), registry.getEpoch(qc.epoch), qc, nonSigners, tabs, validations
        );
        return true;
    }

    /// @notice Whether `result` is certified for `taskId` by a batch: `proof` takes the leaf
    /// (taskId, resultHash, outputRef) to a stored root whose certificate's epoch is result.epoch.
    function hasResult(bytes32 taskId, Result calldata result, bytes32[] calldata proof) external view returns (bool) {
        bytes32 leaf = PoiMessages.batchLeaf(taskId, result.resultHash, result.outputRef);
        uint64 epoch = _batches.epochOf[MerkleProof.processProofCalldata(proof, leaf)];
        return epoch != 0 && epoch == result.epoch;
    }

    /// @notice The epoch of the batch certificate that stored `root` (0 = none).
    function batchEpoch(bytes32 root) external view returns (uint64) {
        return _batches.epochOf[root];
    }

    /// @notice What `requester`'s vouchers have been charged in total and its last settled voucher's sequence.
    function tabOf(address requester) external view returns (uint256 settled, uint64 lastSequence) {
        BatchSettlement.Tab memory t = _batches.tabs[requester];
        return (t.settled, t.lastSequence);
    }

    /// @notice Whether tab sequence `sequence` of `requester` (its tab task of that nonce) is settled.
    function isTabSequenceSettled(address requester, uint64 sequence) external view returns (bool) {
        return (_batches.settled[requester][sequence >> 8] >> (sequence & 255)) & 1 != 0;
    }

    /// @notice The ModelRegistry, when `payer` buys access to a model: takes `amount` of the
    /// payment asset from `payer` (ETH: exactly msg.value; an ERC-20: pulled with transferFrom,
    /// approve the TaskManager first) and credits it to `modelOwner` (withdrawCredit). Not from
    /// the payer's deposit, which stays reserved for task fees (its withdrawal delay protects them).
    function collectAccessPayment(address payer, address modelOwner, uint256 amount)
        external
        payable
        nonReentrant
        returns (uint256 received)
    {
        if (msg.sender != address(models)) revert NotModelRegistry(msg.sender);
        received = amount;
        if (asset == address(0)) {
            if (msg.value != amount) revert WrongDepositValue(msg.value, amount);
        } else {
            if (msg.value != 0) revert WrongDepositValue(msg.value, amount);
            IERC20 token = IERC20(asset);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(payer, address(this), amount);
            received = token.balanceOf(address(this)) - before;
        }
        _credits[modelOwner] += received;
    }

    /// @notice Pays the caller its signers' share of every epoch in `claims` (its leaf in each),
    /// in the payment asset. Reverts NothingToClaim when none of them has anything new.
    function claimRewards(Claim[] calldata claims) external nonReentrant returns (uint256 amount) {
        for (uint256 k; k < claims.length; ++k) {
            Claim calldata c = claims[k];
            (uint256 owed, uint256 index) = _owed(msg.sender, c);
            if (owed == 0) continue;
            _claimedIndex[c.epoch][msg.sender] = index;
            amount += owed;
        }
        if (amount == 0) revert NothingToClaim();
        emit RewardsClaimed(msg.sender, amount);
        _payOut(msg.sender, amount);
    }

    /// @notice What claimRewards(claims) would pay `operator` now (an epoch listed twice counts once).
    function pendingRewards(address operator, Claim[] calldata claims) external view returns (uint256 amount) {
        for (uint256 k; k < claims.length; ++k) {
            bool repeated;
            for (uint256 j; j < k; ++j) {
                if (claims[j].epoch == claims[k].epoch) repeated = true;
            }
            if (repeated) continue;
            (uint256 owed,) = _owed(operator, claims[k]);
            amount += owed;
        }
    }

    /// @notice Certificates `operator` signed and missed in epochs fromEpoch..toEpoch (inclusive),
    /// which the caller knows it was in (EpochStarted), and its slashings over its life.
    /// @dev Computed by the linked TaskManagerGovernance library (room under EIP-170).
    function reputation(address operator, uint64 fromEpoch, uint64 toEpoch)
        external
        view
        returns (uint64 signed, uint64 missed, uint32 slashings)
    {
        return TaskManagerGovernance.reputation(_epochRewards, _missed, registry, operator, fromEpoch, toEpoch);
    }

    /// @notice reputation() over the epochs of the operator's current registration that have
    /// started (from the first epoch that counted it to the last one, or the current one).
    function reputationOf(address operator) external view returns (uint64 signed, uint64 missed, uint32 slashings) {
        return TaskManagerGovernance.reputationOf(_epochRewards, _missed, registry, operator);
    }

    /// @notice The reward index and certificate count of `epoch`.
    function epochRewards(uint64 epoch) external view returns (uint256 index, uint64 certificates) {
        EpochRewards memory r = _epochRewards[epoch];
        return (r.index, r.certificates);
    }

    /// @notice The index `operator` is excluded from in `epoch` and how many certificates it missed there.
    function missedIn(uint64 epoch, address operator) external view returns (uint256 excluded, uint64 count) {
        Missed memory m = _missed[epoch][operator];
        return (m.excluded, m.count);
    }

    /// @notice The EIP-712 digest of `task` on this chain and contract: its task id.
    function taskDigest(Task calldata task) public view returns (bytes32) {
        return _hashTypedDataV4(SettlementRules.taskStructHash(task));
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

    /// @dev What BatchSettlement gets besides storage: the immutable references and the EIP-712 domain.
    function _refs() internal view returns (BatchSettlement.Refs memory) {
        return BatchSettlement.Refs({models: models, validationRegistry: validationRegistry, domainSeparator: _domainSeparatorV4()});
    }

    /// @dev Runs the linked ZkSettlement function `selector` (DELEGATECALL, on this contract's
    /// storage) and returns from this call with its answer (its return data, a bool); its revert
    /// propagates. Its arguments are the seven storage slots it settles in (a library takes a
    /// storage pointer as its slot) followed by this call's own arguments as they came: encoding
    /// them again here cost about 750 bytes of runtime code that the TaskManager does not have
    /// under EIP-170 (test/payments.test.ts keeps 3 KiB of headroom; it has 1 byte to spare). The library's parameters after the slots are this function's, in
    /// order, so only the head offsets of the first `dynamicArgs` arguments (the dynamic ones,
    /// before the static ZkResult) move, by the slots' 7 words; offsets inside an argument are
    /// relative to it and stay. The library decodes and checks everything itself; it reads the
    /// TaskManager's references through its getters.
    function _runZkSettlement(bytes4 selector, uint256 dynamicArgs) internal {
        address library_ = address(ZkSettlement);
        assembly ("memory-safe") {
            let data := mload(0x40)
            mstore(data, selector)
            // ZkSettlement's storage parameters, in its order
            mstore(add(data, 0x04), _results.slot)
            mstore(add(data, 0x24), _accounts.slot)
            mstore(add(data, 0x44), _shortfalls.slot)
            mstore(add(data, 0x64), _credits.slot)
            mstore(add(data, 0x84), _params.slot)
            mstore(add(data, 0xa4), _epochRewards.slot)
            mstore(add(data, 0xc4), _missed.slot)
            let shift := 0xe0
            let args := add(add(data, 4), shift)
            let size := sub(calldatasize(), 4)
            calldatacopy(args, 4, size)
            for { let i := 0 } lt(i, dynamicArgs) { i := add(i, 1) } {
                let at := add(args, shl(5, i))
                mstore(at, add(mload(at), shift))
            }
            let ok := delegatecall(gas(), library_, data, add(add(4, shift), size), 0, 0)
            returndatacopy(data, 0, returndatasize())
            if iszero(ok) { revert(data, returndatasize()) }
            return(data, returndatasize())
        }
    }

    /// @dev ERC-8004: the TaskManager, as validator, answers the task's request. Never blocks settlement.
    function _respond(bytes32 taskId, bytes32 requestHash, bytes32 resultHash) internal {
        SettlementRules.respond(validationRegistry, taskId, requestHash, resultHash);
    }

    /// @dev The certificate's epoch must have started, be at most maxEpochAge old, and settlement not paused.
    function _checkEpoch(uint64 epoch) internal view {
        SettlementRules.checkEpoch(registry, _params.maxEpochAge, epoch);
    }

    /// @dev What `operator` may still claim for `c.epoch` and the index it would have claimed up to.
    function _owed(address operator, Claim calldata c) internal view returns (uint256 owed, uint256 index) {
        OperatorRegistry.Epoch memory ep = registry.getEpoch(c.epoch);
        bytes32 leafHash = OperatorTree.leaf(c.index, operator, c.pubkey, c.stake);
        if (!OperatorTree.verify(ep.root, ep.count, c.index, leafHash, c.proof)) revert NotCallersLeaf(c.epoch, c.index);
        index = _epochRewards[c.epoch].index - _missed[c.epoch][operator].excluded;
        uint256 claimed = _claimedIndex[c.epoch][operator];
        if (index > claimed) owed = Math.mulDiv(c.stake, index - claimed, REWARD_SCALE);
    }
}
