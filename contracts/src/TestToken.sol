// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice An ERC-20 anyone can mint: for tests and devnets only, never a real payment asset
/// (its supply means nothing). Lets the PaymentVault's ERC-20 path run on anvil.
contract TestToken is ERC20 {
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Mints `amount` to `to`; open to every caller.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
