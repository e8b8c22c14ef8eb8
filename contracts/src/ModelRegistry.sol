// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ZkProofs} from "./ZkProofs.sol";

/// @notice The payment side of an access purchase: the TaskManager (its PaymentVault) takes the
/// price from the payer in the network's payment asset and credits the model owner.
interface IAccessPayments {
    function collectAccessPayment(address payer, address modelOwner, uint256 amount) external payable returns (uint256 received);
}

/// @title ModelRegistry
/// @notice Which models the network serves, who owns each, what a task costs and who may request
/// it (DESIGN §7, §9). A model is registered under its id, the bytes of its manifest's CID, by the
/// owner its manifest names, who proves it by passing the manifest block: the contract checks that
/// the block hashes to the id's digest and that the owner written in it is the caller. Nobody who
/// merely saw a publication can register (squat) the id first. The owner alone then changes its
/// fee, active flag, access policy, allowlist and ownership (transferOwnership needs no manifest:
/// only the first registration is proved). Operators and requesters ask isUsable before spending
/// work on a task.
///
/// Model id: a CIDv1 of the manifest's canonical JSON, json codec (0x0200), sha2-256 multihash
/// (0x12, 32 bytes): the 37 bytes 0x01 0x80 0x04 0x12 0x20 || digest. register parses these
/// varints and refuses any other form with a named error.
///
/// Manifest owner: the canonical manifest (node/inference/manifest.ts) starts with the 54 bytes
/// `{"owner":"0x` + 40 lowercase hex digits + `",` (the owner key first, every other key after it
/// in sorted order). A fixed header at a fixed offset lets the contract read the owner with 40
/// byte reads whatever the manifest's size (up to about 256 KiB for a 4096-chunk model), instead
/// of scanning JSON on-chain; lowercase only, so one owner has one spelling, one manifest one id,
/// and no EIP-55 checksum is computed here. The owner is hashed into the id, so two owners who
/// publish the same weights get two model ids; that is intended, each registers its own. The zero
/// address means "not registrable" (a manifest published without an owner) and is refused.
/// Access tiers (DESIGN §9), chosen per model by its owner (setAccessTier): open, allowlist and pay
/// per use let requesters in as they come and charge the model fee per task at settlement;
/// subscription and credits are bought here first (buySubscription, buyCredits), the price paid
/// at once to the owner's credit in the TaskManager's vault. A subscription gives access to
/// tasks whose deadline is before its end; each certified task of a credits model uses one
/// credit, which only the TaskManager takes (useAccess, at settlement). The owner always has access.
/// Zero-knowledge tier (issue 16): the owner registers, per model, the Groth16 verifier generated
/// for its circuit and the circuit's id (setZkVerifier), and changes or removes it as it changes
/// the fee: the owner already decides what the model is, and a new circuit (a re-run setup, a
/// re-quantised model) needs a new verifier. verifyZkProof checks a proof against what is
/// registered when it is called; the ZkVerifierChanged event tells nodes when that changes.
/// @dev Models are keyed by keccak256(modelId): a fixed-size key whatever the CID's codec and hash,
/// and the same value a `bytes indexed` topic would carry, so events filter by it.
contract ModelRegistry {
    /// @dev owner (20 bytes) + registeredAt (8) + accessPolicy (1) + active (1) share one slot, so
    /// the owner check of every setter and the active/policy part of isUsable cost one SLOAD, and
    /// a setter rewrites one slot. fee has its own slot, which a free model never writes.
    struct Model {
        address owner;
        uint64 registeredAt;
        uint8 accessPolicy;
        bool active;
        /// @dev Per task, in wei; what requesters are asked to pay (collected by the task escrow, not here).
        uint256 fee;
        /// @dev TIER_SUBSCRIPTION: wei per period; TIER_CREDITS: wei per credit; 0 otherwise. One slot
        /// with `period`, written only by setAccessTier and read only by purchases.
        uint128 price;
        /// @dev TIER_SUBSCRIPTION: seconds of access one period buys; 0 otherwise.
        uint64 period;
    }

    /// @notice A requester's bought access to one model: one slot, read by useAccess at settlement.
    struct Access {
        /// @dev Unix seconds; the subscription covers tasks whose deadline is before it (0 = never bought).
        uint64 expiresAt;
        uint64 credits;
    }

    /// @notice A model's zk verifier: a snarkjs Groth16 verifier contract and the circuit id its
    /// proofs must carry as public signal 0. verifier == address(0): none registered.
    struct ZkVerifier {
        address verifier;
        uint256 circuitId;
    }

    /// @notice What a node needs to decide whether `requester` may use a model (accessOf).
    struct RequesterAccess {
        uint8 tier;
        bool active;
        bool isOwner;
        /// @dev On the allowlist (meaningful under POLICY_ALLOWLIST).
        bool allowed;
        uint64 expiresAt;
        uint64 credits;
    }

    /// @notice Anyone may request the model.
    uint8 public constant POLICY_OPEN = 0;
    /// @notice Only the owner and the requesters the owner allowed (setAllowed) may request it.
    uint8 public constant POLICY_ALLOWLIST = 1;
    /// @notice Anyone may request the model and pays the model fee per task (an owner's way to say
    /// the fee is the price of access; open charges the fee too, and open with fee 0 is free).
    uint8 public constant TIER_PAY_PER_USE = 2;
    /// @notice A requester buys periods (buySubscription) and may request tasks whose deadline is
    /// before the end of its subscription.
    uint8 public constant TIER_SUBSCRIPTION = 3;
    /// @notice A requester buys credits (buyCredits); each certified task uses one.
    uint8 public constant TIER_CREDITS = 4;
    /// @notice Every id register accepts: version (1 byte) + json codec varint (2) + multihash code
    /// (1) + digest length (1) + sha2-256 digest (32).
    uint256 public constant MODEL_ID_LENGTH = 37;
    /// @notice Gas verifyZkProof gives the model's verifier (ZkProofs.VERIFY_GAS): a verifier that
    /// needs more answers InvalidZkProof, whatever the proof.
    uint256 public constant ZK_VERIFY_GAS = ZkProofs.VERIFY_GAS;

    /// @dev The multiformats values of the only model id form: CIDv1, json codec, sha2-256.
    uint256 internal constant CID_VERSION = 1;
    uint256 internal constant JSON_CODEC = 0x0200;
    uint256 internal constant SHA2_256 = 0x12;
    uint256 internal constant SHA2_256_LENGTH = 32;
    /// @dev A CIDv0 is a bare sha2-256 multihash (0x12 0x20 + 32 bytes), told apart so the error
    /// says version 0 instead of reading 0x12 as version 18.
    uint256 internal constant CID_V0_LENGTH = 34;
    /// @dev The unsigned-varint spec's longest varint (63 bits); longer is malformed.
    uint256 internal constant MAX_VARINT_BYTES = 9;
    /// @dev The manifest's owner header: prefix, 40 hex digits, suffix; 12 + 40 + 2 = 54 bytes.
    bytes12 internal constant OWNER_PREFIX = '{"owner":"0x';
    bytes2 internal constant OWNER_SUFFIX = '",';
    uint256 internal constant OWNER_HEX_START = 12;
    uint256 internal constant OWNER_HEX_END = 52;
    uint256 internal constant OWNER_HEADER_LENGTH = 54;

    /// @dev keccak256(modelId) => model; owner == address(0) means not registered (ownership can
    /// never move to the zero address).
    mapping(bytes32 => Model) internal _models;
    /// @dev keccak256(modelId) => requester => allowed under POLICY_ALLOWLIST. Kept across policy
    /// and ownership changes, so an owner can fill the list before switching to it.
    mapping(bytes32 => mapping(address => bool)) internal _allowed;
    /// @dev keccak256(modelId) => requester => bought access. Kept across tier changes: switching
    /// away and back does not take away what a requester paid for.
    mapping(bytes32 => mapping(address => Access)) internal _access;
    /// @dev keccak256(modelId) => its zk verifier; kept apart from Model so getModel's return
    /// and the slot the settlement reads stay as they were.
    mapping(bytes32 => ZkVerifier) internal _zkVerifiers;

    /// @notice The account that deployed the registry: it alone binds the TaskManager, once.
    address public immutable deployer;
    /// @notice The only caller of useAccess and the vault purchases are paid into (bindTaskManager).
    address public taskManager;

    event ModelRegistered(bytes32 indexed modelKey, address indexed owner, bytes modelId, uint256 fee, uint8 accessPolicy);
    event ModelFeeChanged(bytes32 indexed modelKey, uint256 fee);
    event ModelActiveChanged(bytes32 indexed modelKey, bool active);
    event ModelAccessPolicyChanged(bytes32 indexed modelKey, uint8 accessPolicy);
    event ModelAllowedChanged(bytes32 indexed modelKey, address indexed requester, bool allowed);
    event ModelOwnershipTransferred(bytes32 indexed modelKey, address indexed previousOwner, address indexed newOwner);
    /// @notice setAccessTier: the model's tier and its terms (price per period or per credit, period in seconds).
    event ModelAccessTierChanged(bytes32 indexed modelKey, uint8 tier, uint256 price, uint64 period);
    /// @notice `requester` bought `periods` periods for `paid` wei (credited to the owner); access until `expiresAt`.
    event SubscriptionPurchased(bytes32 indexed modelKey, address indexed requester, uint64 periods, uint256 paid, uint64 expiresAt);
    /// @notice `requester` bought `credits` credits for `paid` wei (credited to the owner); it now holds `balance`.
    event CreditsPurchased(bytes32 indexed modelKey, address indexed requester, uint64 credits, uint256 paid, uint64 balance);
    event TaskManagerBound(address taskManager);
    /// @notice setZkVerifier: the model's proofs now verify with `verifier` for `circuitId` ((0, 0): removed).
    event ZkVerifierChanged(bytes32 indexed modelKey, address indexed verifier, uint256 circuitId);

    error EmptyModelId();
    /// @notice The id is not a CIDv1 (`version` 0 for a CIDv0).
    error ModelIdNotCidV1(uint256 version);
    /// @notice The id's content codec is not json (0x0200), the codec of a manifest block.
    error ModelIdNotJsonCodec(uint256 codec);
    /// @notice The id's multihash is not sha2-256 (0x12).
    error ModelIdNotSha256(uint256 hashCode);
    /// @notice The id's multihash declares a digest length other than 32 bytes.
    error ModelIdDigestLength(uint256 length);
    /// @notice A varint at `offset` is truncated, overlong or not minimally encoded, or the digest
    /// does not end the id exactly (bytes missing or left over).
    error MalformedModelId(uint256 offset);
    /// @notice sha2-256 of the manifest block passed is not the digest inside the model id.
    error ManifestDigestMismatch(bytes32 idDigest, bytes32 manifestDigest);
    /// @notice The manifest block does not start with `{"owner":"0x` + 40 lowercase hex + `",`.
    error ManifestOwnerUnreadable();
    /// @notice The manifest names the zero address: it was published as not registrable.
    error UnownedManifest();
    /// @notice Only the owner named in the manifest may register its id.
    error NotManifestOwner(address caller, address manifestOwner);
    error AlreadyRegistered(bytes32 modelKey, address owner);
    error NotRegistered(bytes32 modelKey);
    error NotOwner(address caller, address owner);
    error UnknownAccessPolicy(uint8 accessPolicy);
    error ZeroOwner();
    /// @notice Purchases need an active model.
    error ModelInactive(bytes32 modelKey);
    /// @notice The model's tier is `tier`, not the `asked` one the purchase is for.
    error TierNotOffered(bytes32 modelKey, uint8 tier, uint8 asked);
    /// @notice setAccessTier terms that do not fit the tier: subscription needs a price and a
    /// period, credits a price and no period, the others no period (their price is the per-task fee).
    error InvalidTierTerms(uint8 tier, uint256 price, uint64 period);
    /// @notice A purchase of zero periods or credits.
    error ZeroUnits();
    /// @notice Settlement: the requester is not on the allowlist of an allowlist model.
    error NotAllowed(bytes32 modelKey, address requester);
    /// @notice Settlement: the task's deadline (`atTime`, unix seconds) is not before the end of
    /// the requester's subscription (`expiresAt`; 0 = never subscribed).
    error SubscriptionEnded(bytes32 modelKey, address requester, uint64 expiresAt, uint64 atTime);
    /// @notice Settlement: the requester holds no credit for a credits model.
    error NoCreditsLeft(bytes32 modelKey, address requester);
    /// @notice useAccess and purchases before bindTaskManager, or useAccess by another caller.
    error NotTaskManager(address caller, address taskManager);
    error NotDeployer(address caller);
    error TaskManagerAlreadyBound(address taskManager);
    /// @notice Mirrors PaymentVault's error (same selector), raised through a purchase: ETH sent
    /// ≠ the price on an ETH network, or ETH sent on an ERC-20 network.
    error WrongDepositValue(uint256 sent, uint256 amount);
    /// @notice setZkVerifier: no contract code at `verifier`.
    error ZkVerifierHasNoCode(address verifier);
    /// @notice setZkVerifier: a circuit id is a public signal, so below the BN254 scalar field.
    error ZkCircuitIdOutOfField(uint256 circuitId);

    constructor() {
        deployer = msg.sender;
    }

    /// @notice Once, by the deployer (contracts/deploy.ts, right after the TaskManager): the
    /// TaskManager then alone takes credits at settlement and receives purchase payments.
    function bindTaskManager(address taskManager_) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        if (taskManager != address(0)) revert TaskManagerAlreadyBound(taskManager);
        if (taskManager_ == address(0)) revert ZeroOwner();
        taskManager = taskManager_;
        emit TaskManagerBound(taskManager_);
    }

    /// @notice Registers `modelId` with the caller as owner, active from now on. `manifest` is the
    /// manifest block the id is the CID of; the caller must be the owner it names. Its calldata
    /// is the cost of the proof: a one-chunk model's manifest is about 600 bytes (measured 96,819
    /// gas in all with a fee, 71,315 before the proof); the largest, 254,469 bytes for 4096 chunks, pays
    /// EIP-7623's floor of 40 gas a non-zero byte: measured 10,204,070 gas, still within a block.
    function register(bytes calldata modelId, bytes calldata manifest, uint256 fee, uint8 accessPolicy)
        external
        returns (bytes32 modelKey)
    {
        bytes32 idDigest = _manifestDigest(modelId);
        _checkPolicy(accessPolicy);
        modelKey = keccak256(modelId);
        Model storage m = _models[modelKey];
        address current = m.owner;
        if (current != address(0)) revert AlreadyRegistered(modelKey, current);
        bytes32 manifestDigest = sha256(manifest);
        if (manifestDigest != idDigest) revert ManifestDigestMismatch(idDigest, manifestDigest);
        address named = _manifestOwner(manifest);
        if (named == address(0)) revert UnownedManifest();
        if (named != msg.sender) revert NotManifestOwner(msg.sender, named);
        m.owner = msg.sender;
        m.registeredAt = uint64(block.timestamp);
        m.accessPolicy = accessPolicy;
        m.active = true;
        if (fee != 0) m.fee = fee;
        emit ModelRegistered(modelKey, msg.sender, modelId, fee, accessPolicy);
    }

    function setFee(bytes calldata modelId, uint256 fee) external {
        (bytes32 modelKey, Model storage m) = _owned(modelId);
        m.fee = fee;
        emit ModelFeeChanged(modelKey, fee);
    }

    /// @notice An inactive model stays registered (its id stays taken) but isUsable says no.
    function setActive(bytes calldata modelId, bool active) external {
        (bytes32 modelKey, Model storage m) = _owned(modelId);
        m.active = active;
        emit ModelActiveChanged(modelKey, active);
    }

    function setAccessPolicy(bytes calldata modelId, uint8 accessPolicy) external {
        _checkPolicy(accessPolicy);
        (bytes32 modelKey, Model storage m) = _owned(modelId);
        m.accessPolicy = accessPolicy;
        emit ModelAccessPolicyChanged(modelKey, accessPolicy);
    }

    /// @notice Sets the model's access tier and its terms in one transaction. Open, allowlist and
    /// pay per use: `price` becomes the per-task fee (pay per use needs one above 0), `period`
    /// must be 0. Subscription: `price` wei per `period` seconds, both above 0. Credits: `price`
    /// wei per credit above 0, `period` 0. For these two the per-task fee becomes 0: access is
    /// paid at purchase (setFee can still add one). What requesters already bought is kept.
    function setAccessTier(bytes calldata modelId, uint8 tier, uint256 price, uint64 period) external {
        (bytes32 modelKey, Model storage m) = _owned(modelId);
        if (tier > TIER_CREDITS) revert UnknownAccessPolicy(tier);
        bool prepaid = tier == TIER_SUBSCRIPTION || tier == TIER_CREDITS;
        if (
            (tier == TIER_SUBSCRIPTION) != (period != 0) || (prepaid && (price == 0 || price > type(uint128).max))
                || (tier == TIER_PAY_PER_USE && price == 0)
        ) revert InvalidTierTerms(tier, price, period);
        m.accessPolicy = tier;
        if (prepaid) {
            (m.price, m.period) = (uint128(price), period);
            if (m.fee != 0) m.fee = 0;
        } else {
            (m.price, m.period) = (0, 0);
            m.fee = price;
        }
        emit ModelAccessTierChanged(modelKey, tier, price, period);
    }

    /// @notice Buys `periods` periods of a subscription model for price × periods, paid now to
    /// its owner (ETH as msg.value, or the ERC-20 the TaskManager pulls: approve it first).
    /// Access runs from max(now, the current end) for period × periods seconds.
    function buySubscription(bytes calldata modelId, uint64 periods) external payable returns (uint64 expiresAt) {
        (bytes32 modelKey, Model storage m) = _purchasable(modelId, TIER_SUBSCRIPTION, periods);
        Access storage a = _access[modelKey][msg.sender];
        uint256 from = a.expiresAt > block.timestamp ? a.expiresAt : block.timestamp;
        expiresAt = SafeCast.toUint64(from + uint256(m.period) * periods);
        a.expiresAt = expiresAt;
        uint256 paid = _collect(m, periods);
        emit SubscriptionPurchased(modelKey, msg.sender, periods, paid, expiresAt);
    }

    /// @notice Buys `credits` uses of a credits model for price × credits, paid now to its owner
    /// (as buySubscription). Returns the requester's credits after the purchase.
    function buyCredits(bytes calldata modelId, uint64 credits) external payable returns (uint64 balance) {
        (bytes32 modelKey, Model storage m) = _purchasable(modelId, TIER_CREDITS, credits);
        Access storage a = _access[modelKey][msg.sender];
        balance = SafeCast.toUint64(uint256(a.credits) + credits);
        a.credits = balance;
        uint256 paid = _collect(m, credits);
        emit CreditsPurchased(modelKey, msg.sender, credits, paid, balance);
    }

    /// @notice The TaskManager, at settlement (the only caller a credit is taken for): checks that `requester` may use the model with key
    /// `modelKey` for a task whose deadline is `atTime` (unix seconds), takes one credit under
    /// TIER_CREDITS, and returns who is paid the per-task fee and how much ((0, 0) for an
    /// unregistered model, which stays open as before). Reverts NotAllowed, SubscriptionEnded or
    /// NoCreditsLeft otherwise. The active flag is not checked here: deactivating a model stops
    /// nodes from taking new tasks, while tasks already served still settle and pay their signers.
    function useAccess(bytes32 modelKey, address requester, uint64 atTime) external returns (address owner, uint256 fee) {
        return _useAccess(modelKey, requester, atTime, 1);
    }

    /// @notice useAccess for `count` tasks of one requester settled at once (a batch, issue 15):
    /// `atTime` is the latest of their deadlines (a subscription must hold until then), and
    /// `count` credits are taken under TIER_CREDITS, all or none (NoCreditsLeft when fewer remain).
    function useAccessBatch(bytes32 modelKey, address requester, uint64 atTime, uint64 count)
        external
        returns (address owner, uint256 fee)
    {
        return _useAccess(modelKey, requester, atTime, count);
    }

    function _useAccess(bytes32 modelKey, address requester, uint64 atTime, uint64 count)
        internal
        returns (address owner, uint256 fee)
    {
        Model storage m = _models[modelKey];
        (owner, fee) = (m.owner, m.fee);
        uint8 tier = m.accessPolicy;
        if (tier == POLICY_OPEN || tier == TIER_PAY_PER_USE || requester == owner) return (owner, fee);
        if (tier == POLICY_ALLOWLIST) {
            if (!_allowed[modelKey][requester]) revert NotAllowed(modelKey, requester);
            return (owner, fee);
        }
        Access storage a = _access[modelKey][requester];
        if (tier == TIER_SUBSCRIPTION) {
            uint64 expiresAt = a.expiresAt;
            if (atTime >= expiresAt) revert SubscriptionEnded(modelKey, requester, expiresAt, atTime);
            return (owner, fee);
        }
        // Only here does useAccess write, so only here is the caller checked: the other tiers
        // answer anyone as a view would, and the TaskManager's certificate skips a cold SLOAD.
        if (msg.sender != taskManager) revert NotTaskManager(msg.sender, taskManager);
        uint64 credits = a.credits;
        if (credits < count) revert NoCreditsLeft(modelKey, requester);
        unchecked {
            a.credits = credits - count;
        }
    }

    /// @notice Adds `requester` to (or removes it from) the model's allowlist, whatever the current
    /// policy: the list takes effect while the policy is POLICY_ALLOWLIST.
    function setAllowed(bytes calldata modelId, address requester, bool allowed) external {
        (bytes32 modelKey,) = _owned(modelId);
        _allowed[modelKey][requester] = allowed;
        emit ModelAllowedChanged(modelKey, requester, allowed);
    }

    function transferOwnership(bytes calldata modelId, address newOwner) external {
        if (newOwner == address(0)) revert ZeroOwner();
        (bytes32 modelKey, Model storage m) = _owned(modelId);
        m.owner = newOwner;
        emit ModelOwnershipTransferred(modelKey, msg.sender, newOwner);
    }

    /// @notice Registers `verifier` (a snarkjs Groth16 verifier with four public signals) as the
    /// model's zk verifier for the circuit `circuitId`, replacing any earlier one; owner only.
    /// The zero address removes it (circuitId is then ignored and stored as 0).
    function setZkVerifier(bytes calldata modelId, address verifier, uint256 circuitId) external {
        (bytes32 modelKey,) = _owned(modelId);
        if (verifier == address(0)) {
            delete _zkVerifiers[modelKey];
            emit ZkVerifierChanged(modelKey, address(0), 0);
            return;
        }
        if (verifier.code.length == 0) revert ZkVerifierHasNoCode(verifier);
        if (circuitId >= ZkProofs.FIELD) revert ZkCircuitIdOutOfField(circuitId);
        _zkVerifiers[modelKey] = ZkVerifier({verifier: verifier, circuitId: circuitId});
        emit ZkVerifierChanged(modelKey, verifier, circuitId);
    }

    /// @notice The model's zk verifier and circuit id; (address(0), 0) when none is registered.
    function zkVerifierOf(bytes calldata modelId) external view returns (ZkVerifier memory) {
        return _zkVerifiers[keccak256(modelId)];
    }

    /// @notice Reverts unless (a, b, c) is a valid Groth16 proof of `signals` = [circuitId,
    /// inputCommitment, outputCommitment, prover] under the verifier registered for the model with key
    /// `modelKey` (keccak256 of its id), and signals[0] is its registered circuit id. Named
    /// reverts: ZkVerifierNotRegistered, ZkSignalOutOfField, ZkCircuitMismatch, ZkVerifierOutOfGas
    /// (give the call more gas), InvalidZkProof. The TaskManager's one call per zk result: one
    /// external call from it, the verifier's lookup and its stipend live here (ZkProofs).
    function verifyZkProof(
        bytes32 modelKey,
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[4] calldata signals
    ) external view {
        ZkVerifier storage z = _zkVerifiers[modelKey];
        ZkProofs.check(modelKey, z.verifier, z.circuitId, a, b, c, signals);
    }

    /// @notice The model registered as `modelId`; all fields zero (owner == address(0)) if none is.
    function getModel(bytes calldata modelId) external view returns (Model memory) {
        return _models[keccak256(modelId)];
    }

    /// @notice Who is paid for a task of the model with key `modelKey` (keccak256 of its id) and
    /// how much: (address(0), 0) for an unregistered model. The TaskManager's one read per certificate.
    function paymentTerms(bytes32 modelKey) external view returns (address owner, uint256 fee) {
        Model storage m = _models[modelKey];
        return (m.owner, m.fee);
    }

    /// @notice Whether `requester` is on the model's allowlist (meaningful under POLICY_ALLOWLIST).
    function isAllowed(bytes calldata modelId, address requester) external view returns (bool) {
        return _allowed[keccak256(modelId)][requester];
    }

    /// @notice True when `modelId` is registered, active, and `requester` may use it now under its
    /// tier (the owner always may). False, never a revert, for an unknown or malformed id.
    function isUsable(bytes calldata modelId, address requester) external view returns (bool) {
        return hasAccess(modelId, requester, uint64(block.timestamp));
    }

    /// @notice Whether `requester` may have a task of `modelId` whose deadline is `atTime` (unix
    /// seconds) served: the model is registered and active, and its tier lets the requester in
    /// (open, pay per use; allowlist: on it; subscription: atTime before its end; credits: at
    /// least one left). What nodes ask before they serve a task; settlement asks the same (useAccess).
    function hasAccess(bytes calldata modelId, address requester, uint64 atTime) public view returns (bool) {
        bytes32 modelKey = keccak256(modelId);
        Model storage m = _models[modelKey];
        // an unregistered model has active == false
        if (!m.active) return false;
        uint8 tier = m.accessPolicy;
        if (tier == POLICY_OPEN || tier == TIER_PAY_PER_USE || requester == m.owner) return true;
        if (tier == POLICY_ALLOWLIST) return _allowed[modelKey][requester];
        Access storage a = _access[modelKey][requester];
        if (tier == TIER_SUBSCRIPTION) return atTime < a.expiresAt;
        return a.credits != 0;
    }

    /// @notice The model's tier and `requester`'s standing under it, so a node can say why not.
    function accessOf(bytes calldata modelId, address requester) external view returns (RequesterAccess memory) {
        bytes32 modelKey = keccak256(modelId);
        Model storage m = _models[modelKey];
        Access storage a = _access[modelKey][requester];
        return RequesterAccess({
            tier: m.accessPolicy,
            active: m.active,
            isOwner: m.owner != address(0) && requester == m.owner,
            allowed: _allowed[modelKey][requester],
            expiresAt: a.expiresAt,
            credits: a.credits
        });
    }

    /// @notice Credits `requester` holds for `modelId` (TIER_CREDITS).
    function creditsOf(bytes calldata modelId, address requester) external view returns (uint64) {
        return _access[keccak256(modelId)][requester].credits;
    }

    /// @notice When `requester`'s subscription to `modelId` ends, unix seconds (0 = never bought).
    function subscriptionOf(bytes calldata modelId, address requester) external view returns (uint64) {
        return _access[keccak256(modelId)][requester].expiresAt;
    }

    /// @dev The model a purchase of `units` under `tier` is for: registered, active, offering it.
    function _purchasable(bytes calldata modelId, uint8 tier, uint64 units) internal view returns (bytes32 modelKey, Model storage m) {
        modelKey = keccak256(modelId);
        m = _models[modelKey];
        if (m.owner == address(0)) revert NotRegistered(modelKey);
        if (!m.active) revert ModelInactive(modelKey);
        if (m.accessPolicy != tier) revert TierNotOffered(modelKey, m.accessPolicy, tier);
        if (units == 0) revert ZeroUnits();
        if (taskManager == address(0)) revert NotTaskManager(address(0), address(0));
    }

    /// @dev Has the TaskManager take price × units from the caller into the owner's credit; what arrived.
    function _collect(Model storage m, uint64 units) internal returns (uint256) {
        return IAccessPayments(taskManager).collectAccessPayment{value: msg.value}(msg.sender, m.owner, uint256(m.price) * units);
    }

    function _owned(bytes calldata modelId) internal view returns (bytes32 modelKey, Model storage m) {
        modelKey = keccak256(modelId);
        m = _models[modelKey];
        address owner = m.owner;
        if (owner == address(0)) revert NotRegistered(modelKey);
        if (owner != msg.sender) revert NotOwner(msg.sender, owner);
    }

    /// @dev The sha2-256 digest inside a model id, after checking the id is exactly
    /// CIDv1 | json codec | sha2-256 | 32 | digest, each varint minimally encoded.
    function _manifestDigest(bytes calldata modelId) internal pure returns (bytes32) {
        if (modelId.length == 0) revert EmptyModelId();
        if (modelId.length == CID_V0_LENGTH && uint8(modelId[0]) == SHA2_256 && uint8(modelId[1]) == SHA2_256_LENGTH) {
            revert ModelIdNotCidV1(0);
        }
        (uint256 version, uint256 at) = _readVarint(modelId, 0);
        if (version != CID_VERSION) revert ModelIdNotCidV1(version);
        uint256 codec;
        (codec, at) = _readVarint(modelId, at);
        if (codec != JSON_CODEC) revert ModelIdNotJsonCodec(codec);
        uint256 hashCode;
        (hashCode, at) = _readVarint(modelId, at);
        if (hashCode != SHA2_256) revert ModelIdNotSha256(hashCode);
        uint256 length;
        (length, at) = _readVarint(modelId, at);
        if (length != SHA2_256_LENGTH) revert ModelIdDigestLength(length);
        if (modelId.length != at + SHA2_256_LENGTH) revert MalformedModelId(at);
        return bytes32(modelId[at:]);
    }

    /// @dev One unsigned varint (LEB128, multiformats' minimal form) starting at `at`.
    function _readVarint(bytes calldata data, uint256 at) internal pure returns (uint256 value, uint256 next) {
        for (uint256 i = 0; i < MAX_VARINT_BYTES; ++i) {
            if (at + i >= data.length) revert MalformedModelId(at);
            uint256 b = uint8(data[at + i]);
            value |= (b & 0x7f) << (7 * i);
            if (b < 0x80) {
                // a final zero group after a continuation byte adds nothing: a second spelling of a smaller value
                if (b == 0 && i > 0) revert MalformedModelId(at);
                return (value, at + i + 1);
            }
        }
        revert MalformedModelId(at);
    }

    /// @dev The owner from the manifest's fixed header (see the contract's notice).
    function _manifestOwner(bytes calldata manifest) internal pure returns (address) {
        if (
            manifest.length < OWNER_HEADER_LENGTH || bytes12(manifest[:OWNER_HEX_START]) != OWNER_PREFIX
                || bytes2(manifest[OWNER_HEX_END:OWNER_HEADER_LENGTH]) != OWNER_SUFFIX
        ) revert ManifestOwnerUnreadable();
        uint160 owner;
        for (uint256 i = OWNER_HEX_START; i < OWNER_HEX_END; ++i) {
            uint160 c = uint8(manifest[i]);
            uint160 nibble;
            if (c >= 0x30 && c <= 0x39) nibble = c - 0x30; // '0'..'9'
            else if (c >= 0x61 && c <= 0x66) nibble = c - 0x57; // 'a'..'f' → 10..15
            else revert ManifestOwnerUnreadable();
            owner = (owner << 4) | nibble;
        }
        return address(owner);
    }

    /// @dev register and setAccessPolicy take the tiers that need no terms (subscription and
    /// credits need a price: setAccessTier).
    function _checkPolicy(uint8 accessPolicy) internal pure {
        if (accessPolicy > TIER_PAY_PER_USE) revert UnknownAccessPolicy(accessPolicy);
    }
}
