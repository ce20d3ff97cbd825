"""NCT06904729: CAR-T cells for refractory/recurrent lupus nephritis in children, version 1.0.

One module per protocol section; each contributes its rules. Registry record:
shared/protocol-source/NCT06904729.md.
"""

from protocol.model import Protocol
from protocol.nct06904729 import informed_consent

PROTOCOL = Protocol(
    study_id="NCT06904729",
    version="1.0",
    title="CAR-T cells for refractory/recurrent lupus nephritis in children",
    rules=(*informed_consent.RULES,),
)
