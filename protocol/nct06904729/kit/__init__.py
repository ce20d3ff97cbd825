"""NCT06904729's authoring kit: the words its scenarios are written in (``steps.VOCABULARY``),
the journeys they start from, and the registry record's criteria with how each is encoded.

A subpackage on purpose: the ruleset fingerprint covers the modules of the protocol package
itself (``protocol.fingerprint.source_modules``), not these, so a new scenario word or a criterion
note does not change the fingerprint of a version whose rules did not change.
"""
