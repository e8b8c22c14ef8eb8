// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Votes} from "@openzeppelin/contracts/governance/utils/Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {BLS12381} from "./BLS12381.sol";

/// @notice The messages operators BLS-sign. Must match consensus/attestation.ts and
/// consensus/proof-of-possession.ts byte for byte, or off-chain and on-chain verdicts diverge.
library PoiMessages {
    /// @dev keccak256(abi.encode("POI_ATTESTATION_V1", chainid, taskManager, taskId, resultHash, outputRef, uint64 epoch)).
    /// chainid and taskManager bind a signature to one chain and one contract (no replay elsewhere).
    function attestationDigest(
        address taskManager,
        bytes32 taskId,
        bytes32 resultHash,
        bytes32 outputRef,
        uint64 epoch
    ) internal view returns (bytes32) {
        return keccak256(abi.encode("POI_ATTESTATION_V1", block.chainid, taskManager, taskId, resultHash, outputRef, epoch));
    }

    /// @dev keccak256(abi.encode("POI_BATCH_V1", chainid, taskManager, root, uint64 epoch, summaryHash)):
    /// what operators sign for a batch (consensus/batch.ts batchDigest; the tag sets it apart from
    /// attestations and proofs of possession). TaskManager's batch settlement verifies it, the
    /// SlashingManager holds an operator to it.
    function batchDigest(address taskManager, bytes32 root, uint64 epoch, bytes32 summaryHash) internal view returns (bytes32) {
        return keccak256(abi.encode("POI_BATCH_V1", block.chainid, taskManager, root, epoch, summaryHash));
    }

    /// @dev A batch leaf (taskId, resultHash, outputRef), hashed as OpenZeppelin's StandardMerkleTree
    /// hashes leaves (consensus/batch.ts batchLeafHash): twice, so no inner node passes for a leaf.
    function batchLeaf(bytes32 taskId, bytes32 resultHash, bytes32 outputRef) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(taskId, resultHash, outputRef))));
    }

    /// @dev keccak256(abi.encode("POI_POP_V1", operator, pubkey)); the key as its 128-byte EIP-2537 words.
    function proofOfPossessionDigest(address operator, BLS.G1Point memory pubkey) internal pure returns (bytes32) {
        return keccak256(abi.encode("POI_POP_V1", operator, pubkey));
    }
}

/// @notice Commitment to an epoch's ordered operator set (contracts/operator-tree.ts builds the same tree).
/// leaf_i = keccak256(abi.encode(uint256 i, operator, keccak256(abi.encode(pubkey)), uint256 stake)); leaves
/// padded with bytes32(0) to the next power of two; parent = keccak256(left ‖ right).
library OperatorTree {
    function leaf(uint256 index, address operator, BLS.G1Point memory pubkey, uint256 stake) internal pure returns (bytes32) {
        return keccak256(abi.encode(index, operator, keccak256(abi.encode(pubkey)), stake));
    }

    /// @dev Levels above the leaves: ceil(log2(count)), 0 for count ≤ 1.
    function depth(uint256 count) internal pure returns (uint256 d) {
        while ((uint256(1) << d) < count) ++d;
    }

    function hashPair(bytes32 left, bytes32 right) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            h := keccak256(0x00, 0x40)
        }
    }

    /// @dev The proof must have exactly depth(count) siblings: a shorter or longer path would
    /// prove against some other node than the root the epoch committed to.
    function verify(bytes32 root, uint256 count, uint256 index, bytes32 leafHash, bytes32[] calldata proof)
        internal
        pure
        returns (bool)
    {
        if (index >= count || proof.length != depth(count)) return false;
        bytes32 node = leafHash;
        for (uint256 i; i < proof.length; ++i) {
            node = (index >> i) & 1 == 0 ? hashPair(node, proof[i]) : hashPair(proof[i], node);
        }
        return node == root;
    }

    /// @dev Root over `leaves`; overwrites the array (it is scratch space by then).
    function computeRoot(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        while (n > 1) {
            uint256 half = n >> 1;
            for (uint256 i; i < half; ++i) {
                leaves[i] = hashPair(leaves[2 * i], leaves[2 * i + 1]);
            }
            n = half;
        }
        return leaves[0];
    }
}

/// @title OperatorRegistry
/// @notice Operators stake ETH and register a BLS key with a proof of possession; at each epoch
/// boundary the active set is frozen (ordered list, Merkle root, aggregate key, total stake) so a
/// quorum certificate of that epoch stays checkable whatever happens to the registry later.
/// @dev Governance: the owner (the timelock once deployPoi hands it over) changes minStake,
/// exitDelay and epochDuration within bounds (setParameter) and names the guardian, who can pause
/// new registrations and, through TaskManager.settlementEpoch, new task settlement in one call;
/// only the owner unpauses. Voting power (ERC-5805, timestamp clock) is active stake: a registered
/// operator that has not asked to exit votes with its live stake, self-delegated at registration.
contract OperatorRegistry is Ownable, Votes {
    struct Operator {
        BLS.G1Point pubkey;
        /// @dev Live stake: lowered by slashing, paid out by withdraw. Epoch snapshots keep their own copy.
        uint256 stake;
        /// @dev 0 = not exiting.
        uint64 exitRequestedAt;
        /// @dev The first epoch without this operator (set by requestExit).
        uint64 exitEpoch;
        bool registered;
        /// @dev The first epoch that counts this registration (currentEpoch + 1 at register): where
        /// its reputation starts (TaskManager.reputationOf). Shares the slot above: no extra write.
        uint64 firstEpoch;
        /// @dev Times slashed, over every registration of this account (reputation).
        uint32 slashings;
    }

    struct Epoch {
        bytes32 root;
        BLS.G1Point apk;
        uint256 totalStake;
        uint32 count;
        uint64 startedAt;
    }

    uint256 internal constant BPS_DENOMINATOR = 10_000;
    /// @notice Most operators registered at once (exiting ones included, withdrawn ones not): the
    /// wire limit (protocols/wire/constants.ts MAX_OPERATORS). Above it the codec rejects an operator
    /// index and a signer bitmap no longer fits, and advanceEpoch's loop stays bounded.
    uint256 public constant MAX_OPERATORS = 1024;

    /// @notice Shortest exit delay governance may set: evidence against the last certificate that
    /// could count an exiting stake must still be able to land (a reporter reacting, a congested
    /// chain); below it the stake could leave before it is slashable (ExitDelayBreaksSlashability).
    uint64 public constant MIN_EXIT_DELAY = 1 hours;
    /// @notice Longest exit delay governance may set: stake must always be able to leave.
    uint64 public constant MAX_EXIT_DELAY = 30 days;
    /// @notice Shortest epoch governance may set: maxCertificateAge and a certificate's age are
    /// counted in epochs, so epochs started back to back would expire certificates in flight and
    /// release exiting stake within minutes.
    uint64 public constant MIN_EPOCH_DURATION = 5 minutes;
    /// @notice Longest epoch governance may set: a registration waits for the next epoch to count.
    uint64 public constant MAX_EPOCH_DURATION = 7 days;

    /// @notice The most epochs a certificate's epoch may lag the current one in any contract that
    /// trusts this registry's snapshots (TaskManager refuses a larger maxEpochAge, at construction
    /// and in its setter). An exiting operator's stake stays here until no certificate naming an
    /// epoch that counted it can still be accepted, so whatever it signed there can still be slashed.
    /// Immutable: lowering it would release stake that certificates still accepted may count.
    uint64 public immutable maxCertificateAge;

    /// @notice The latest epoch started; 0 before the first advanceEpoch.
    /// @dev currentEpoch, lastEpochStart, epochDuration and paused share one slot: advanceEpoch
    /// and settlementEpoch (every certificate) read one slot.
    uint64 public currentEpoch;
    uint64 public lastEpochStart;
    /// @notice Shortest epoch, seconds (setParameter "epochDuration").
    uint64 public epochDuration;
    /// @notice New registrations and new task settlement are refused while true (guardian's pause).
    bool public paused;
    /// @notice May pause (never unpause); set by the owner. address(0) = nobody.
    address public guardian;
    /// @notice Seconds an exiting stake stays after the last certificate that could count it (setParameter "exitDelay").
    uint64 public exitDelay;
    address public slasher;
    /// @notice Smallest stake register() accepts, wei (setParameter "minStake").
    uint256 public minStake;

    /// @dev The registered operators (exiting ones included); withdraw swaps the leaver with the
    /// last entry and pops, so the order is not registration order. Each epoch commits to the order
    /// it snapshotted (root and EpochStarted), so nothing relies on the order across epochs.
    address[] internal _operatorList;
    /// @dev 1 + the operator's index in _operatorList; 0 = not listed.
    mapping(address => uint256) internal _listPosition;
    mapping(address => Operator) internal _operators;
    /// @notice keccak256(abi.encode(pubkey)) of every key ever registered: a key is never reused.
    mapping(bytes32 => bool) public keyUsed;
    mapping(uint64 => Epoch) internal _epochs;

    event OperatorRegistered(address indexed operator, BLS.G1Point pubkey, uint256 stake);
    event ExitRequested(address indexed operator, uint64 readyAt);
    event Withdrawn(address indexed operator, uint256 amount);
    event EpochStarted(
        uint64 indexed epoch, bytes32 root, uint256 totalStake, address[] operators, BLS.G1Point[] pubkeys, uint256[] stakes
    );
    event OperatorSlashed(address indexed operator, uint256 amount, address indexed reporter, uint256 reward);
    event SlasherSet(address slasher);
    /// @notice A governed parameter changed (`name` as bytes32 of its ASCII name, e.g. "exitDelay").
    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);
    event GuardianSet(address indexed guardian);
    /// @notice The guardian paused registrations and task settlement.
    event NetworkPaused(address indexed guardian);
    /// @notice The owner (the timelock) lifted the pause.
    event NetworkUnpaused(address indexed by);

    error NotSlasher();
    error SlasherAlreadySet();
    error ZeroAddress();
    error StakeTooLow(uint256 sent, uint256 min);
    error AlreadyRegistered();
    error KeyAlreadyUsed();
    error InvalidPublicKey();
    error InvalidProofOfPossession();
    error NotRegistered();
    error AlreadyExiting();
    error NotExiting();
    error ExitNotReady(uint64 readyAt);
    /// @notice A certificate naming an epoch that counted this stake could still be accepted;
    /// withdraw works from epoch `withdrawableFromEpoch`.
    error StakeStillCertifiable(uint64 withdrawableFromEpoch);
    error TooManyOperators(uint256 max);
    /// @notice The key's negation is (or was) registered: together the two would cancel in an
    /// aggregate key, letting signers be named who never signed.
    error NegatedKeyRegistered();
    error EpochNotOver(uint64 readyAt);
    error InvalidBps(uint256 bps);
    error TransferFailed();
    /// @notice setParameter knows no parameter of that name here.
    error UnknownParameter(bytes32 name);
    /// @notice `value` is outside [min, max] for parameter `name`.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice An exit delay below MIN_EXIT_DELAY would let stake leave before evidence against
    /// the last certificate that counted it can land.
    error ExitDelayBreaksSlashability(uint256 exitDelay, uint64 minimum);
    /// @notice pause() by an account that is not the guardian.
    error NotGuardian(address caller);
    /// @notice Registrations and task settlement are paused by the guardian until the owner unpauses.
    error Paused();
    error NotPaused();

    /// @dev The deployer owns the registry until deployPoi transfers it to the timelock. Deploy-time
    /// values are the deployer's choice (devnets use short delays); setParameter enforces the
    /// governance bounds on every change.
    constructor(uint256 minStake_, uint64 exitDelay_, uint64 epochDuration_, uint64 maxCertificateAge_)
        Ownable(msg.sender)
        EIP712("poi operator votes", "1")
    {
        minStake = minStake_;
        exitDelay = exitDelay_;
        epochDuration = epochDuration_;
        maxCertificateAge = maxCertificateAge_;
    }

    /// @notice Governance: sets "minStake" (wei, > 0), "exitDelay" (MIN_EXIT_DELAY..MAX_EXIT_DELAY
    /// seconds) or "epochDuration" (MIN_EPOCH_DURATION..MAX_EPOCH_DURATION seconds). A new
    /// exitDelay applies to every exit not yet withdrawn; a new epochDuration from the current epoch.
    function setParameter(bytes32 name, uint256 value) external onlyOwner {
        uint256 old;
        if (name == "minStake") {
            if (value == 0) revert ParameterOutOfBounds(name, value, 1, type(uint256).max);
            old = minStake;
            minStake = value;
        } else if (name == "exitDelay") {
            if (value < MIN_EXIT_DELAY) revert ExitDelayBreaksSlashability(value, MIN_EXIT_DELAY);
            if (value > MAX_EXIT_DELAY) revert ParameterOutOfBounds(name, value, MIN_EXIT_DELAY, MAX_EXIT_DELAY);
            old = exitDelay;
            exitDelay = uint64(value);
        } else if (name == "epochDuration") {
            if (value < MIN_EPOCH_DURATION || value > MAX_EPOCH_DURATION) {
                revert ParameterOutOfBounds(name, value, MIN_EPOCH_DURATION, MAX_EPOCH_DURATION);
            }
            old = epochDuration;
            epochDuration = uint64(value);
        } else {
            revert UnknownParameter(name);
        }
        emit ParameterChanged(name, old, value);
    }

    /// @notice Governance: names the guardian (address(0): nobody can pause).
    function setGuardian(address guardian_) external onlyOwner {
        guardian = guardian_;
        emit GuardianSet(guardian_);
    }

    /// @notice The guardian stops new registrations and new task settlement at once. Exits,
    /// stake withdrawals, deposits' withdrawals, credit and reward claims, slashing and epochs go on.
    function pause() external {
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        if (paused) revert Paused();
        paused = true;
        emit NetworkPaused(msg.sender);
    }

    /// @notice Only the owner (the timelock) lifts the pause: a compromised guardian can stop the
    /// network for at most the time governance takes, never restart it against governance.
    function unpause() external onlyOwner {
        if (!paused) revert NotPaused();
        paused = false;
        emit NetworkUnpaused(msg.sender);
    }

    /// @notice The current epoch, for contracts that settle against it: reverts Paused while the
    /// guardian's pause holds (one slot read for both).
    function settlementEpoch() external view returns (uint64) {
        if (paused) revert Paused();
        return currentEpoch;
    }

    /// @notice Once, by the owner: the SlashingManager is then the only account that can slash.
    function setSlasher(address slasher_) external onlyOwner {
        if (slasher != address(0)) revert SlasherAlreadySet();
        if (slasher_ == address(0)) revert ZeroAddress();
        slasher = slasher_;
        emit SlasherSet(slasher_);
    }

    /// @notice Stake msg.value and register `pubkey`; active from the next epoch.
    /// @param proofOfPossession BLS signature by `pubkey` over proofOfPossessionDigest(msg.sender, pubkey):
    /// blocks rogue-key attacks on aggregate keys, and the pairing precompile subgroup-checks the key.
    function register(BLS.G1Point calldata pubkey, BLS.G2Point calldata proofOfPossession) external payable {
        if (paused) revert Paused();
        if (msg.value < minStake) revert StakeTooLow(msg.value, minStake);
        Operator storage op = _operators[msg.sender];
        if (op.registered) revert AlreadyRegistered();
        if (_operatorList.length >= MAX_OPERATORS) revert TooManyOperators(MAX_OPERATORS);
        bytes32 keyHash = keccak256(abi.encode(pubkey));
        if (keyUsed[keyHash]) revert KeyAlreadyUsed();
        BLS.G1Point memory key = pubkey;
        if (BLS12381.isInfinity(key)) revert InvalidPublicKey();
        // pk and -pk from two accounts (one party knows both secret keys, so both proofs of
        // possession are valid) add up to the identity: a certificate could name both as signers
        // while neither signed. A valid key is never its own negation (that is only the identity,
        // refused above; y = 0 is not on the curve), so one lookup suffices. g1Negate reverts
        // InvalidPoint for a non-canonical y, which the pairing would refuse anyway.
        if (keyUsed[keccak256(abi.encode(BLS12381.g1Negate(key)))]) revert NegatedKeyRegistered();
        bytes32 digest = PoiMessages.proofOfPossessionDigest(msg.sender, key);
        if (!BLS12381.verify(key, abi.encodePacked(digest), proofOfPossession)) revert InvalidProofOfPossession();

        // votes follow the operator unless it delegated them before (an earlier registration);
        // before the stake is recorded, so that delegating moves nothing and the stake counts once
        if (delegates(msg.sender) == address(0)) _delegate(msg.sender, msg.sender);
        keyUsed[keyHash] = true;
        op.pubkey = key;
        op.stake = msg.value;
        op.exitRequestedAt = 0;
        op.exitEpoch = 0;
        op.registered = true;
        op.firstEpoch = currentEpoch + 1;
        _operatorList.push(msg.sender);
        _listPosition[msg.sender] = _operatorList.length;
        _transferVotingUnits(address(0), msg.sender, msg.value);
        emit OperatorRegistered(msg.sender, key, msg.value);
    }

    /// @notice Leave the set from the next epoch; withdraw() pays the stake back once maxCertificateAge
    /// epochs have started after the last one that counted it (until then a certificate of that epoch
    /// could still be accepted) and exitDelay has passed since the first of those epochs ended the
    /// last chance of such a certificate (the window in which evidence can still slash the stake).
    function requestExit() external {
        Operator storage op = _operators[msg.sender];
        if (!op.registered) revert NotRegistered();
        if (op.exitRequestedAt != 0) revert AlreadyExiting();
        // an exiting stake no longer secures the network: it stops voting now (withdraw finds none left)
        _transferVotingUnits(msg.sender, address(0), op.stake);
        op.exitRequestedAt = uint64(block.timestamp);
        op.exitEpoch = currentEpoch + 1;
        emit ExitRequested(msg.sender, uint64(block.timestamp) + exitDelay);
    }

    function withdraw() external {
        Operator storage op = _operators[msg.sender];
        if (!op.registered || op.exitRequestedAt == 0) revert NotExiting();
        uint64 readyAt = op.exitRequestedAt + exitDelay;
        if (block.timestamp < readyAt) revert ExitNotReady(readyAt);
        // The last epoch that can count this stake is exitEpoch - 1; a certificate of epoch E is
        // accepted while currentEpoch <= E + maxEpochAge <= E + maxCertificateAge. Counted in epochs,
        // not seconds: anyone may call advanceEpoch, so after a gap epochs can start back to back.
        uint64 withdrawableFrom = op.exitEpoch + maxCertificateAge;
        if (currentEpoch < withdrawableFrom) revert StakeStillCertifiable(withdrawableFrom);
        // A certificate counting this stake can land just before epoch withdrawableFrom starts:
        // evidence against it (or against an attestation it aggregates) gets exitDelay from then.
        uint64 evidenceClosesAt = _epochs[withdrawableFrom].startedAt + exitDelay;
        if (block.timestamp < evidenceClosesAt) revert ExitNotReady(evidenceClosesAt);
        uint256 amount = op.stake;
        op.stake = 0;
        op.registered = false;
        op.exitRequestedAt = 0;
        op.exitEpoch = 0;
        _unlist(msg.sender);
        emit Withdrawn(msg.sender, amount);
        _pay(msg.sender, amount);
    }

    /// @notice Anyone may start the next epoch once the current one has lasted epochDuration.
    function advanceEpoch() external returns (uint64 epoch) {
        uint64 readyAt = lastEpochStart + epochDuration;
        if (block.timestamp < readyAt) revert EpochNotOver(readyAt);

        uint256 listed = _operatorList.length;
        address[] memory addrs = new address[](listed);
        BLS.G1Point[] memory keys = new BLS.G1Point[](listed);
        uint256[] memory stakes = new uint256[](listed);
        uint256 count;
        uint256 totalStake;
        BLS.G1Point memory apk;
        for (uint256 i; i < listed; ++i) {
            address a = _operatorList[i];
            Operator storage op = _operators[a];
            if (!op.registered || op.exitRequestedAt != 0 || op.stake == 0) continue;
            BLS.G1Point memory key = op.pubkey;
            addrs[count] = a;
            keys[count] = key;
            stakes[count] = op.stake;
            totalStake += op.stake;
            apk = count == 0 ? key : BLS12381.g1Add(apk, key);
            ++count;
        }
        assembly ("memory-safe") {
            mstore(addrs, count)
            mstore(keys, count)
            mstore(stakes, count)
        }

        bytes32[] memory leaves = new bytes32[](uint256(1) << OperatorTree.depth(count));
        for (uint256 i; i < count; ++i) {
            leaves[i] = OperatorTree.leaf(i, addrs[i], keys[i], stakes[i]);
        }
        bytes32 root = OperatorTree.computeRoot(leaves);

        epoch = currentEpoch + 1;
        currentEpoch = epoch;
        lastEpochStart = uint64(block.timestamp);
        _epochs[epoch] = Epoch({
            root: root, apk: apk, totalStake: totalStake, count: uint32(count), startedAt: uint64(block.timestamp)
        });
        emit EpochStarted(epoch, root, totalStake, addrs, keys, stakes);
    }

    /// @notice Only the slasher: lowers the live stake (never an epoch snapshot), pays the reporter
    /// amount·reporterBps/10000 and keeps the rest locked here for good (burned).
    function slash(address operator, uint256 amount, address reporter, uint256 reporterBps) external returns (uint256 slashed) {
        if (msg.sender != slasher) revert NotSlasher();
        if (reporterBps > BPS_DENOMINATOR) revert InvalidBps(reporterBps);
        Operator storage op = _operators[operator];
        slashed = amount < op.stake ? amount : op.stake;
        if (_getVotingUnits(operator) != 0) _transferVotingUnits(operator, address(0), slashed);
        op.stake -= slashed;
        op.slashings += 1;
        uint256 reward = slashed * reporterBps / BPS_DENOMINATOR;
        emit OperatorSlashed(operator, slashed, reporter, reward);
        if (reward != 0) _pay(reporter, reward);
    }

    /// @notice ERC-6372: votes are checkpointed by block timestamp, the unit of epochs, exit and
    /// timelock delays (and of anvil's evm_increaseTime), not by block number.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function operators(address operator) external view returns (Operator memory) {
        return _operators[operator];
    }

    function getEpoch(uint64 epoch) external view returns (Epoch memory) {
        return _epochs[epoch];
    }

    /// @notice Number of registered operators, exiting ones included (at most MAX_OPERATORS).
    function operatorCount() external view returns (uint256) {
        return _operatorList.length;
    }

    /// @dev Voting units: the live stake of a registered operator that has not asked to exit.
    function _getVotingUnits(address account) internal view override returns (uint256) {
        Operator storage op = _operators[account];
        return op.registered && op.exitRequestedAt == 0 ? op.stake : 0;
    }

    /// @dev Swap and pop: O(1), keeps advanceEpoch's loop to operators that still hold stake here.
    function _unlist(address operator) internal {
        uint256 position = _listPosition[operator];
        uint256 last = _operatorList.length;
        if (position != last) {
            address moved = _operatorList[last - 1];
            _operatorList[position - 1] = moved;
            _listPosition[moved] = position;
        }
        _operatorList.pop();
        delete _listPosition[operator];
    }

    function _pay(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
