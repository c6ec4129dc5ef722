"""The chain layer: shipped contract artifacts, deployment manifests, the RPC client, typed
event decoding and transaction sending. Every other AscendNet domain talks to the chain
through this package."""
