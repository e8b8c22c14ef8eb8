// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BLS} from "solady/utils/ext/ithaca/BLS.sol";
import {BLS12381} from "./BLS12381.sol";
import {OperatorRegistry, OperatorTree, PoiMessages} from "./OperatorRegistry.sol";

/// @title SlashingManager
/// @notice Equivocation (one operator, one task, two different result hashes, both validly signed
/// for the TaskManager's domain) slashes slashBps of the operator's live stake, once per
/// (operator, task); the reporter gets reporterBps of the slashed amount.
contract SlashingManager {
    struct Signed {
        bytes32 resultHash;
        bytes32 outputRef;
        BLS.G2Point signature;
    }

    struct Evidence {
        uint64 epoch;
        bytes32 taskId;
        /// @dev The operator's position in the epoch's set, with its leaf proof against the epoch root.
        uint32 index;
        address operator;
        BLS.G1Point pubkey;
        uint256 stake;
        bytes32[] proof;
        Signed a;
        Signed b;
    }

    uint256 internal constant BPS_DENOMINATOR = 10_000;

    OperatorRegistry public immutable registry;
    address public immutable taskManager;
    uint16 public immutable slashBps;
    uint16 public immutable reporterBps;

    mapping(address => mapping(bytes32 => bool)) public slashed;

    event EquivocationSlashed(
        address indexed operator, bytes32 indexed taskId, uint64 epoch, uint256 amount, address reporter, uint256 reward
    );

    error InvalidBps(uint256 bps);
    error IdenticalResults();
    error AlreadySlashed();
    error InvalidOperatorProof();
    error InvalidSignature(uint8 which);

    constructor(address registry_, address taskManager_, uint16 slashBps_, uint16 reporterBps_) {
        if (slashBps_ > BPS_DENOMINATOR) revert InvalidBps(slashBps_);
        if (reporterBps_ > BPS_DENOMINATOR) revert InvalidBps(reporterBps_);
        registry = OperatorRegistry(registry_);
        taskManager = taskManager_;
        slashBps = slashBps_;
        reporterBps = reporterBps_;
    }

    /// @return amount The stake taken from the operator (0 if it had already withdrawn).
    function submitEvidence(Evidence calldata e) external returns (uint256 amount) {
        if (e.a.resultHash == e.b.resultHash) revert IdenticalResults();
        // before the pairings: a late duplicate report costs its sender little
        if (slashed[e.operator][e.taskId]) revert AlreadySlashed();

        OperatorRegistry.Epoch memory ep = registry.getEpoch(e.epoch);
        BLS.G1Point memory key = e.pubkey;
        bytes32 leafHash = OperatorTree.leaf(e.index, e.operator, key, e.stake);
        if (!OperatorTree.verify(ep.root, ep.count, e.index, leafHash, e.proof)) revert InvalidOperatorProof();

        _checkSigned(e, e.a, key, 0);
        _checkSigned(e, e.b, key, 1);

        slashed[e.operator][e.taskId] = true;
        uint256 liveStake = registry.operators(e.operator).stake;
        amount = registry.slash(e.operator, liveStake * slashBps / BPS_DENOMINATOR, msg.sender, reporterBps);
        emit EquivocationSlashed(e.operator, e.taskId, e.epoch, amount, msg.sender, amount * reporterBps / BPS_DENOMINATOR);
    }

    function _checkSigned(Evidence calldata e, Signed calldata s, BLS.G1Point memory key, uint8 which) internal view {
        bytes32 digest = PoiMessages.attestationDigest(taskManager, e.taskId, s.resultHash, s.outputRef, e.epoch);
        if (!BLS12381.verify(key, abi.encodePacked(digest), s.signature)) revert InvalidSignature(which);
    }
}
