"""Defaults every command shares, in a module that imports nothing (the offline commands read
them without loading the broker client)."""

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_STUDY = "NCT06904729"
