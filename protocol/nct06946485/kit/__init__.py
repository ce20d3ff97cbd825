"""NCT06946485's authoring kit: scenario words, journeys, the record's criteria, the simulation
profile. A subpackage, so that it does not change the ruleset fingerprint."""
