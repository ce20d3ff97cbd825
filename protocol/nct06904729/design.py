"""Study design: the two dose arms, the treatment sequence and the follow-up schedule, as in v1.0.

A version's own schedule and arm targets are the values of its ``visit_schedule`` and
``arm_target_cells_per_kg`` parameters (``Terms.schedule``, ``Terms.target_cells_per_kg``).
"""

from __future__ import annotations

from protocol.model import Arm, Parameter, Step, VisitWindow

ARMS = (
    Arm("low_dose", 5e5, "Low-dose CAR-T cells group: approximately 5x100,000 cells/kg"),
    Arm("high_dose", 1e6, "High-dose CAR-T cells group: approximately 1x1,000,000 cells/kg"),
)
TARGET_CELLS_PER_KG = {arm.name: arm.target_cells_per_kg for arm in ARMS}
ARM_TARGETS = Parameter(
    "arm_target_cells_per_kg",
    tuple((arm.name, arm.target_cells_per_kg) for arm in ARMS),
    "cells/kg",
    "Study groups and Interventions: low dose approximately 5x100,000 cells/kg, high dose 1x1,000,000 cells/kg",
)
"""The arms' target doses as a parameter (the same numbers as ARMS), so a rule can name them."""

STEPS = (
    Step("LeukapheresisPerformed", after="ParticipantEnrolled"),
    Step("LymphodepletionAdministered", after="LeukapheresisPerformed"),
    Step("CarTInfused", after="LymphodepletionAdministered"),
)
"""The treatment sequence: each step needs enrollment and the step before it."""

SCHEDULE = (
    VisitWindow("D7", 7, 2),
    VisitWindow("D14", 14, 2),
    VisitWindow("D28", 28, 2),
    VisitWindow("M3", 90, 7),
    VisitWindow("M6", 180, 7),
    VisitWindow("M12", 365, 14),
    VisitWindow("M18", 545, 14),
    VisitWindow("M24", 730, 14),
)
VISIT_SCHEDULE = Parameter(
    "visit_schedule",
    SCHEDULE,
    "days after infusion",
    "clinical.md decisions",
    assumption="not stated in the record: D7, D14, D28 (+-2 d), M3 (day 90), M6 (day 180) (+-7 d), M12 (day 365), "
    "M18 (day 545), M24 (day 730) (+-14 d), counted in calendar days from the infusion date",
)
