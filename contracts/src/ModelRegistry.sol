// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ModelRegistry
/// @notice Which models the network serves, who owns each, what a task costs and who may request
/// it (DESIGN §7, §9). A model is registered under its id, the bytes of its manifest's CID, by
/// anyone; that account becomes its owner and alone changes its fee, active flag, access policy,
/// allowlist and ownership. Operators and requesters ask isUsable before spending work on a task.
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
    /// @notice A CIDv1 with a 256-bit digest is 36 bytes; 64 leaves room for other codecs and longer
    /// digests while keeping calldata and the registration event bounded.
    uint256 public constant MAX_MODEL_ID_LENGTH = 64;

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
    error ModelIdTooLong(uint256 length, uint256 maxLength);
    error AlreadyRegistered(bytes32 modelKey, address owner);
    error NotRegistered(bytes32 modelKey);
    error NotOwner(address caller, address owner);
    error UnknownAccessPolicy(uint8 accessPolicy);
    error ZeroOwner();

    /// @notice Registers `modelId` with the caller as owner, active from now on.
    function register(bytes calldata modelId, uint256 fee, uint8 accessPolicy) external returns (bytes32 modelKey) {
        if (modelId.length == 0) revert EmptyModelId();
        if (modelId.length > MAX_MODEL_ID_LENGTH) revert ModelIdTooLong(modelId.length, MAX_MODEL_ID_LENGTH);
        _checkPolicy(accessPolicy);
        modelKey = keccak256(modelId);
        Model storage m = _models[modelKey];
        address current = m.owner;
        if (current != address(0)) revert AlreadyRegistered(modelKey, current);
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

    function _checkPolicy(uint8 accessPolicy) internal pure {
        if (accessPolicy > POLICY_ALLOWLIST) revert UnknownAccessPolicy(accessPolicy);
    }
}
