"""The lab gateway: an authenticated HTTP front door that publishes contract-v1 events to Kafka.

Sources (lab systems) register once (``trialguard sources add``) and send events with their API
key; the gateway checks them against the contract and the source's registration, and publishes a
request's events in one Kafka transaction, answering only once Kafka has them.
"""
