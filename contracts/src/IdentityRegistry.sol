// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";

/// @title IdentityRegistry
/// @notice The ERC-8004 ("Trustless Agents") Identity Registry, reduced to what the Validation
/// Registry needs: every agent is an ERC-721 token (tokenId = agentId, tokenURI = agentURI, the
/// URI of its registration file), so its owner and the operators the owner approved (ERC-721
/// `approve` / `setApprovalForAll`) are who may act for it, and it can be transferred like any NFT.
/// @dev ERC-8004 is a Draft. Written from its text as of 2026-01-25 (ERC8004SPEC.md in the
/// erc-8004/erc-8004-contracts repository, last changed by its commit 093d7b9), sections
/// "Identity Registry", "Registration" and "Update agentURI". Left out, because no part of the
/// validation flow reads them: on-chain metadata (getMetadata/setMetadata, MetadataSet, the
/// `register(string, MetadataEntry[])` overload) and the reserved `agentWallet` key with its
/// EIP-712 / ERC-1271 wallet proof. Not upgradeable: a devnet deploys it with the rest of poi.
contract IdentityRegistry is ERC721URIStorage {
    /// @dev The agentId the next registration gets; ids are assigned incrementally from 0, as the
    /// ERC asks ("the ERC-721 tokenId assigned incrementally by the registry").
    uint256 internal _nextAgentId;

    /// @notice ERC-8004: emitted once per registration, after the ERC-721 Transfer from address(0).
    event Registered(uint256 indexed agentId, string agentURI, address indexed owner);
    /// @notice ERC-8004: the agent's URI was changed by `updatedBy` (its owner or an operator).
    event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy);

    /// @notice `caller` is neither the owner of `agentId` nor an operator the owner approved.
    error NotAgentOwnerOrOperator(uint256 agentId, address caller);

    constructor() ERC721("ERC-8004 Trustless Agent", "AGENT") {}

    /// @notice Registers a new agent owned by the caller, with no agentURI yet (set it later with
    /// setAgentURI). Returns its agentId.
    function register() external returns (uint256 agentId) {
        return _register("");
    }

    /// @notice Registers a new agent owned by the caller whose registration file is at `agentURI`
    /// (ipfs://, https:// or a base64 data: URI, as the ERC allows). Returns its agentId.
    function register(string calldata agentURI) external returns (uint256 agentId) {
        return _register(agentURI);
    }

    /// @notice Points `agentId` at a new registration file; its owner or an approved operator only.
    function setAgentURI(uint256 agentId, string calldata newURI) external {
        if (!isAuthorizedOrOwner(msg.sender, agentId)) revert NotAgentOwnerOrOperator(agentId, msg.sender);
        _setTokenURI(agentId, newURI);
        emit URIUpdated(agentId, newURI, msg.sender);
    }

    /// @notice Whether `spender` may act for `agentId`: its owner, an operator for all of the
    /// owner's agents, or the account approved for this one. Reverts ERC721NonexistentToken for
    /// an agent never registered.
    function isAuthorizedOrOwner(address spender, uint256 agentId) public view returns (bool) {
        return _isAuthorized(_requireOwned(agentId), spender, agentId);
    }

    /// @dev _mint, not _safeMint: a contract registering itself as an agent need not implement
    /// onERC721Received, and no external call happens before the Registered event.
    function _register(string memory agentURI) internal returns (uint256 agentId) {
        agentId = _nextAgentId++;
        _mint(msg.sender, agentId);
        if (bytes(agentURI).length > 0) _setTokenURI(agentId, agentURI);
        emit Registered(agentId, agentURI, msg.sender);
    }
}
