"""Audit: what TrialGuard knew and decided, under the protocol in force, with proof the log is
untouched (hash chain, signed checkpoints), and the SDTM DV dataset."""
