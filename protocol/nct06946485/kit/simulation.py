"""What ``trialguard simulate`` needs of NCT06946485 beyond its ``Protocol``."""

from __future__ import annotations

from protocol.kit import SimulationProfile
from protocol.nct06946485.screening import REQUIRED_LABS

PROFILE = SimulationProfile(screening_labs=REQUIRED_LABS)
