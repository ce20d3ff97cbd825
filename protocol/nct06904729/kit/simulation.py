"""What ``trialguard simulate`` needs of NCT06904729 beyond its ``Protocol`` (parameters, schedule
and arms it reads from the protocol version the registry gives it)."""

from __future__ import annotations

from protocol.kit import SimulationProfile
from protocol.nct06904729.screening import REQUIRED_LABS

PROFILE = SimulationProfile(screening_labs=REQUIRED_LABS)
