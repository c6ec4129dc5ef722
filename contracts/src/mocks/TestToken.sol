// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice An ERC-20 with open minting, for tests and the local dev chain only. Never allow it
/// as a payment asset on a public network.
contract TestToken is ERC20 {
    constructor() ERC20("AscendNet Test Token", "ATT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
