Feature: Informed consent - before any study procedure, nothing after it is withdrawn
  The participant signs at 10:30 and the guardian at 10:31 on study day 0.

  Rule: CONSENT-01 - no study procedure before consent is complete

    Scenario: Screening labs a minute before the guardian signs
      Given an eligible participant
      And the screening labs on study day 0 at 10:30
      Then CONSENT-01 is raised
      And nothing else is raised

    @boundary
    Scenario: Screening labs at the minute the guardian signs
      Given an eligible participant
      And the screening labs on study day 0 at 10:31
      Then CONSENT-01 is not raised
      And nothing is raised

  Rule: CONSENT-02 - no study procedure after consent was withdrawn, once per withdrawal

    Scenario: Visits after withdrawal raise one finding
      Given an eligible participant
      And every follow-up visit missed
      And consent withdrawn on day 3 after infusion
      And a follow-up visit D7 performed on day 7 after infusion
      And a follow-up visit D14 performed on day 14 after infusion
      Then CONSENT-02 is raised once
      And nothing else is raised

    @boundary
    Scenario: A visit at the minute consent is withdrawn
      Given an eligible participant
      And every follow-up visit missed
      And consent withdrawn on day 7 after infusion at 11:30
      And a follow-up visit D7 performed on day 7 after infusion at 11:30
      Then CONSENT-02 is not raised
      And nothing is raised
