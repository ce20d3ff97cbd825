"""Study design of NCT06946485 v1.0: one arm, the treatment steps of a universal product, and no
visit schedule (the record has none).

The product is "universal" (off-the-shelf): no leukapheresis. Lymphodepletion is NOT AVAILABLE
in the record: it is a step that needs enrollment when done, and the infusion does not depend on
it. The dose is NOT AVAILABLE: the arm has no target and no dose rule is configured.
"""

from __future__ import annotations

from protocol.model import Arm, Parameter, Step, VisitWindow

ARM = "cht101"
ARMS = (Arm(ARM, None, "Universal anti-CD70 CAR-T (CHT101) cell therpy"),)

STEPS = (
    Step("LymphodepletionAdministered", after="ParticipantEnrolled"),
    Step("CarTInfused", after="ParticipantEnrolled"),
)
"""Each step needs enrollment; the infusion does not need lymphodepletion (not in the record)."""

SCHEDULE: tuple[VisitWindow, ...] = ()
VISIT_SCHEDULE = Parameter(
    "visit_schedule",
    SCHEDULE,
    "days after infusion",
    "Visit Schedule: NOT AVAILABLE in the record; no visit is checked until it is",
)
