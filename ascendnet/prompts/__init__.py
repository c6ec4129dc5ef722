"""Encrypted prompt content and licence key delivery.

- `crypto`: the content AEAD, ECIES key wrapping to a buyer, and recovery of a buyer's public key
  from the signature of their purchase transaction.
- `seller_keys`: the seller's content keys, encrypted at rest.
- `market`: the prompt operations against PromptMarketplace (mint, buy a licence, decrypt, refund,
  rate), shared by the CLI and the agent.
- `cli`: `ascendnet prompt ...`, on the shared client session of `ascendnet.client`.

The metadata document itself is `ascendnet.prompt_metadata`; docs/THREAT_MODEL.md says what each
party can and cannot learn or do.
"""
