// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IValidationRegistry} from "./IValidationRegistry.sol";

/// @title ValidationRegistry
/// @notice The ERC-8004 ("Trustless Agents") Validation Registry over an ERC-8004 Identity
/// Registry: agents (through their owner or an approved operator) request validation of their
/// work from a validator of their choice; the validator records a 0..100 response. In poi the
/// TaskManager is such a validator: a request naming it is answered with 100 when a quorum
/// certificate for the task it names is accepted (DESIGN §9).
/// @dev ERC-8004 is a Draft. Written from its text as of 2026-01-25 (ERC8004SPEC.md in the
/// erc-8004/erc-8004-contracts repository, last changed by its commit 093d7b9), section
/// "Validation Registry". Departures: the identity registry is a constructor argument rather than
/// `initialize(address)` (this registry is not upgradeable); requestHash, requestURI and the
/// validator are refused when empty (the ERC makes them mandatory); `hasResponse` is poi's own
/// view, because getValidationStatus cannot tell "no response yet" from a response of 0.
/// Incentives and slashing stay with the validation protocol, as the ERC says.
contract ValidationRegistry is IValidationRegistry {
    /// @notice The ERC's range of a response: 0 (failed) to 100 (passed).
    uint8 public constant MAX_RESPONSE = 100;

    /// @dev validator (20 bytes) + lastUpdate (8) + response (1) + responded (1) share one slot,
    /// so a response rewrites one slot beside its hash and tag. validator == address(0) means no
    /// such request (a request cannot name the zero validator).
    struct Validation {
        address validator;
        uint64 lastUpdate;
        uint8 response;
        bool responded;
        uint256 agentId;
        bytes32 responseHash;
        string tag;
    }

    /// @dev Any ERC-721 whose tokens are agents; ownerOf / getApproved / isApprovedForAll decide
    /// who may request for an agent, so any ERC-8004 Identity Registry works.
    IERC721 internal immutable _identityRegistry;

    mapping(bytes32 requestHash => Validation) internal _validations;
    mapping(uint256 agentId => bytes32[]) internal _agentValidations;
    mapping(address validator => bytes32[]) internal _validatorRequests;

    constructor(address identityRegistry_) {
        if (identityRegistry_ == address(0)) revert ZeroIdentityRegistry();
        _identityRegistry = IERC721(identityRegistry_);
    }

    /// @inheritdoc IValidationRegistry
    function getIdentityRegistry() external view returns (address) {
        return address(_identityRegistry);
    }

    /// @inheritdoc IValidationRegistry
    function validationRequest(address validatorAddress, uint256 agentId, string calldata requestURI, bytes32 requestHash) external {
        if (validatorAddress == address(0)) revert ZeroValidator();
        if (requestHash == bytes32(0)) revert ZeroRequestHash();
        if (bytes(requestURI).length == 0) revert EmptyRequestURI();
        if (_validations[requestHash].validator != address(0)) revert RequestExists(requestHash);
        if (!_mayActFor(msg.sender, agentId)) revert NotAgentOwnerOrOperator(agentId, msg.sender);

        Validation storage v = _validations[requestHash];
        v.validator = validatorAddress;
        v.lastUpdate = uint64(block.timestamp);
        v.agentId = agentId;
        _agentValidations[agentId].push(requestHash);
        _validatorRequests[validatorAddress].push(requestHash);
        emit ValidationRequest(validatorAddress, agentId, requestURI, requestHash);
    }

    /// @inheritdoc IValidationRegistry
    function validationResponse(bytes32 requestHash, uint8 response, string calldata responseURI, bytes32 responseHash, string calldata tag)
        external
    {
        Validation storage v = _validations[requestHash];
        address validator = v.validator;
        if (validator == address(0)) revert UnknownRequest(requestHash);
        if (msg.sender != validator) revert NotRequestValidator(requestHash, validator, msg.sender);
        if (response > MAX_RESPONSE) revert ResponseOutOfRange(response, MAX_RESPONSE);

        v.lastUpdate = uint64(block.timestamp);
        v.response = response;
        v.responded = true;
        v.responseHash = responseHash;
        v.tag = tag;
        emit ValidationResponse(validator, v.agentId, requestHash, response, responseURI, responseHash, tag);
    }

    /// @inheritdoc IValidationRegistry
    function getValidationStatus(bytes32 requestHash)
        external
        view
        returns (address validatorAddress, uint256 agentId, uint8 response, bytes32 responseHash, string memory tag, uint256 lastUpdate)
    {
        Validation storage v = _validations[requestHash];
        if (v.validator == address(0)) revert UnknownRequest(requestHash);
        return (v.validator, v.agentId, v.response, v.responseHash, v.tag, v.lastUpdate);
    }

    /// @notice Whether the validator has responded to `requestHash` (poi's view, not the ERC's).
    /// Reverts UnknownRequest for a hash never requested.
    function hasResponse(bytes32 requestHash) external view returns (bool) {
        Validation storage v = _validations[requestHash];
        if (v.validator == address(0)) revert UnknownRequest(requestHash);
        return v.responded;
    }

    /// @inheritdoc IValidationRegistry
    /// @dev Reads every request of the agent (and compares each validator with every filter
    /// entry): meant for eth_call, where gas is not paid; a contract should read single requests.
    function getSummary(uint256 agentId, address[] calldata validatorAddresses, string calldata tag)
        external
        view
        returns (uint64 count, uint8 averageResponse)
    {
        bytes32[] storage hashes = _agentValidations[agentId];
        bool anyTag = bytes(tag).length == 0;
        bytes32 tagHash = keccak256(bytes(tag));
        uint256 total;
        for (uint256 i = 0; i < hashes.length; i++) {
            Validation storage v = _validations[hashes[i]];
            if (!v.responded) continue;
            if (!_listed(v.validator, validatorAddresses)) continue;
            if (!anyTag && keccak256(bytes(v.tag)) != tagHash) continue;
            total += v.response;
            count++;
        }
        // Every response is ≤ MAX_RESPONSE, so the average is too and fits a uint8.
        if (count > 0) averageResponse = uint8(total / count);
    }

    /// @inheritdoc IValidationRegistry
    function getAgentValidations(uint256 agentId) external view returns (bytes32[] memory requestHashes) {
        return _agentValidations[agentId];
    }

    /// @inheritdoc IValidationRegistry
    function getValidatorRequests(address validatorAddress) external view returns (bytes32[] memory requestHashes) {
        return _validatorRequests[validatorAddress];
    }

    /// @dev The agent's owner, an operator for all its owner's tokens, or the account approved for
    /// it. An agent the identity registry does not know (ownerOf reverts) is UnknownAgent.
    function _mayActFor(address caller, uint256 agentId) internal view returns (bool) {
        address owner;
        try _identityRegistry.ownerOf(agentId) returns (address o) {
            owner = o;
        } catch {
            revert UnknownAgent(agentId);
        }
        if (owner == address(0)) revert UnknownAgent(agentId);
        return caller == owner || _identityRegistry.isApprovedForAll(owner, caller) || _identityRegistry.getApproved(agentId) == caller;
    }

    /// @dev Whether `account` passes the filter: an empty list lets every account through.
    function _listed(address account, address[] calldata accounts) internal pure returns (bool) {
        if (accounts.length == 0) return true;
        for (uint256 i = 0; i < accounts.length; i++) {
            if (accounts[i] == account) return true;
        }
        return false;
    }
}
