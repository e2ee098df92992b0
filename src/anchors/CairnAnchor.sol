// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.37;

/// @title CairnAnchor: an append-only public trail of dataset releases.
/// @notice Each call logs one release: the sha2-256 digest inside its version CID, its parent's digest,
///         the dataset it belongs to and who sent it. Nothing is stored and nothing can be changed: the
///         log is the record and its block is the release's public time. Anyone may anchor anything;
///         a reader decides whose anchors count by their sender.
contract CairnAnchor {
    /// @param dataset  sha2-256 of the dataset's name in UTF-8 (the version's `name`, or an IPNS name)
    /// @param version  the sha2-256 digest inside the version CID (CIDv1, dag-json)
    /// @param sender   the account that sent the transaction
    /// @param parent   the parent version's digest; zero for a first version
    /// @param sequence the version's place in its history: 1 for a first version, the parent's + 1
    event Anchored(bytes32 indexed dataset, bytes32 indexed version, address indexed sender, bytes32 parent, uint64 sequence);

    /// @notice A zero digest names no version.
    error ZeroVersion();

    function anchor(bytes32 dataset, bytes32 version, bytes32 parent, uint64 sequence) external {
        if (version == bytes32(0)) revert ZeroVersion();
        emit Anchored(dataset, version, msg.sender, parent, sequence);
    }
}
