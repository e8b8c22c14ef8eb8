// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

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
    }

    /// @notice Anyone may request the model.
    uint8 public constant POLICY_OPEN = 0;
    /// @notice Only the owner and the requesters the owner allowed (setAllowed) may request it.
    uint8 public constant POLICY_ALLOWLIST = 1;
    /// @notice Every id register accepts: version (1 byte) + json codec varint (2) + multihash code
    /// (1) + digest length (1) + sha2-256 digest (32).
    uint256 public constant MODEL_ID_LENGTH = 37;

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

    event ModelRegistered(bytes32 indexed modelKey, address indexed owner, bytes modelId, uint256 fee, uint8 accessPolicy);
    event ModelFeeChanged(bytes32 indexed modelKey, uint256 fee);
    event ModelActiveChanged(bytes32 indexed modelKey, bool active);
    event ModelAccessPolicyChanged(bytes32 indexed modelKey, uint8 accessPolicy);
    event ModelAllowedChanged(bytes32 indexed modelKey, address indexed requester, bool allowed);
    event ModelOwnershipTransferred(bytes32 indexed modelKey, address indexed previousOwner, address indexed newOwner);

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

    /// @notice True when `modelId` is registered, active, and `requester` may use it under its
    /// policy (the owner always may). False, never a revert, for an unknown or malformed id.
    function isUsable(bytes calldata modelId, address requester) external view returns (bool) {
        bytes32 modelKey = keccak256(modelId);
        Model storage m = _models[modelKey];
        // an unregistered model has active == false
        if (!m.active) return false;
        if (m.accessPolicy == POLICY_OPEN) return true;
        return requester == m.owner || _allowed[modelKey][requester];
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

    function _checkPolicy(uint8 accessPolicy) internal pure {
        if (accessPolicy > POLICY_ALLOWLIST) revert UnknownAccessPolicy(accessPolicy);
    }
}
