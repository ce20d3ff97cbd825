"""The tamper-evident record of participant-events, below the rules service and the audit tools.

Both sides build on it, neither on the other: the rules service chains and signs what it
consumes (``services.rules.chains``), the audit tools export and verify it (``services.audit``).

- ``chain``: the hash chain over a partition's records and the bytes a checkpoint signs;
- ``signatures``: signing a checkpoint and checking its signature;
- ``keys``: the Ed25519 keys, their ids and files;
- ``export_format``: the lines of an audit export (records and signed checkpoints).
"""
