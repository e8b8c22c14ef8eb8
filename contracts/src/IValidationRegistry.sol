// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IValidationRegistry
/// @notice The ERC-8004 ("Trustless Agents") Validation Registry: an agent's owner asks a named
/// validator to check a piece of work (validationRequest), and that validator records a score
/// from 0 (failed) to 100 (passed) for it (validationResponse), as often as it likes.
/// @dev ERC-8004 is a Draft. Functions, events and argument order follow its text as of
/// 2026-01-25 (ERC8004SPEC.md in the erc-8004/erc-8004-contracts repository, last changed by its
/// commit 093d7b9), section "Validation Registry". The custom errors are poi's: the ERC names
/// the refusals but not how they revert. The TaskManager calls validationResponse as the
/// validator of requests that name it, inside a try/catch, so a bad request never blocks a
/// certificate.
interface IValidationRegistry {
    /// @notice ERC-8004: `agentId`'s owner or operator asked `validatorAddress` to validate the
    /// work described at `requestURI`, committed to by `requestHash`.
    event ValidationRequest(address indexed validatorAddress, uint256 indexed agentId, string requestURI, bytes32 indexed requestHash);
    /// @notice ERC-8004: the validator recorded `response` (0..100) for `requestHash`, with all
    /// the arguments of the call.
    event ValidationResponse(
        address indexed validatorAddress,
        uint256 indexed agentId,
        bytes32 indexed requestHash,
        uint8 response,
        string responseURI,
        bytes32 responseHash,
        string tag
    );

    /// @notice The identity registry given at deployment is address(0).
    error ZeroIdentityRegistry();
    /// @notice A request must name a validator.
    error ZeroValidator();
    /// @notice A request must carry its commitment: requestHash identifies it.
    error ZeroRequestHash();
    /// @notice A request must say where its data is (the ERC makes requestURI mandatory).
    error EmptyRequestURI();
    /// @notice No agent `agentId` in the identity registry.
    error UnknownAgent(uint256 agentId);
    /// @notice `caller` is neither the owner of `agentId` nor an operator the owner approved.
    error NotAgentOwnerOrOperator(uint256 agentId, address caller);
    /// @notice A request with this hash exists already (requestHash identifies a request).
    error RequestExists(bytes32 requestHash);
    /// @notice No request with this hash.
    error UnknownRequest(bytes32 requestHash);
    /// @notice Only the validator the request named may respond to it.
    error NotRequestValidator(bytes32 requestHash, address validator, address caller);
    /// @notice A response is a score from 0 to 100.
    error ResponseOutOfRange(uint8 response, uint8 max);

    /// @notice The ERC-8004 Identity Registry whose agents may request validation.
    function getIdentityRegistry() external view returns (address);

    /// @notice ERC-8004: asks `validatorAddress` to validate work of `agentId`; the owner of the
    /// agent or an operator it approved only. `requestHash` (keccak256 of the request payload at
    /// `requestURI`) identifies the request and must be new.
    function validationRequest(address validatorAddress, uint256 agentId, string calldata requestURI, bytes32 requestHash) external;

    /// @notice ERC-8004: records the validator's `response` (0 = failed … 100 = passed) for
    /// `requestHash`; the validator the request named only. May be called again: the latest
    /// response replaces the stored one (e.g. soft then hard finality under different tags).
    /// `responseURI`, `responseHash` and `tag` are optional.
    function validationResponse(bytes32 requestHash, uint8 response, string calldata responseURI, bytes32 responseHash, string calldata tag)
        external;

    /// @notice ERC-8004: the stored state of a request (response 0 and an empty tag until the
    /// validator responds; lastUpdate is the block time of the request or of the latest
    /// response). Reverts UnknownRequest for a hash never requested.
    function getValidationStatus(bytes32 requestHash)
        external
        view
        returns (address validatorAddress, uint256 agentId, uint8 response, bytes32 responseHash, string memory tag, uint256 lastUpdate);

    /// @notice ERC-8004: how many of `agentId`'s requests have a response, and their average
    /// (rounded down; 0 when there is none), counting only requests whose validator is in
    /// `validatorAddresses` (empty: any) and whose latest tag is `tag` (empty: any).
    function getSummary(uint256 agentId, address[] calldata validatorAddresses, string calldata tag)
        external
        view
        returns (uint64 count, uint8 averageResponse);

    /// @notice ERC-8004: the hashes of every request made for `agentId`, oldest first.
    function getAgentValidations(uint256 agentId) external view returns (bytes32[] memory requestHashes);

    /// @notice ERC-8004: the hashes of every request naming `validatorAddress`, oldest first.
    function getValidatorRequests(address validatorAddress) external view returns (bytes32[] memory requestHashes);
}
