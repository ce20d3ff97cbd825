Feature: NCT06946485 consent, treatment sequence of a universal product, and safety alerts
  Enrollment on study day 10 at 10:30, infusion on study day 14; no leukapheresis and no
  lymphodepletion in the clean journey.

  Rule: CONSENT-01 - no study procedure before the participant signs

    Scenario: screening a day before consent
      Given an eligible participant
      And consent signed on study day 4
      Then CONSENT-01 is raised once
      And nothing else is raised

    @boundary
    Scenario: screening at the minute of consent
      Given an eligible participant
      And consent signed on study day 3
      Then CONSENT-01 is not raised
      And nothing is raised

  Rule: CONSENT-02 - no study procedure after consent is withdrawn

    Scenario: infused after withdrawal
      Given an enrolled participant not yet treated
      And consent withdrawn on study day 12
      And CarTInfused on study day 14 with:
        """
        {"total_cells": 3e8, "weight_kg": 60.0, "product_lot": "CHT-1"}
        """
      Then CONSENT-02 is raised
      And nothing else is raised

    @boundary
    Scenario: withdrawn after the last procedure
      Given an eligible participant
      And consent withdrawn on day 1 after infusion
      Then CONSENT-02 is not raised
      And nothing is raised

  Rule: SEQ-01 - eligibility confirmed before enrollment

    Scenario: no confirmation
      Given an eligible participant
      And no eligibility confirmation
      Then SEQ-01 is raised
      And nothing else is raised

    @boundary
    Scenario: confirmed on the enrollment day
      Given an eligible participant
      Then SEQ-01 is not raised
      And nothing is raised

  Rule: SEQ-02 - every step after enrollment; lymphodepletion is optional

    Scenario: lymphodepletion before enrollment
      Given an eligible participant
      And lymphodepletion on study day 8
      Then SEQ-02 is raised with step = "LymphodepletionAdministered"
      And nothing else is raised

    Scenario: infusion before enrollment
      Given an enrolled participant not yet treated
      And CarTInfused on study day 9 with:
        """
        {"total_cells": 3e8, "weight_kg": 60.0, "product_lot": "CHT-1"}
        """
      Then SEQ-02 is raised with step = "CarTInfused"
      And nothing else is raised

    @boundary
    Scenario: lymphodepletion at the minute of enrollment, then infusion
      Given an eligible participant
      And lymphodepletion on study day 10
      Then SEQ-02 is not raised
      And nothing is raised

  Rule: SEQ-03 - one infusion

    Scenario: a second infusion
      Given an eligible participant
      And a second CAR-T infusion on day 30 after infusion
      Then SEQ-03 is raised with infusion_number = 2
      And nothing else is raised

    @boundary
    Scenario: one infusion
      Given an eligible participant
      Then SEQ-03 is not raised
      And nothing is raised

  Rule: SEQ-05 - no leukapheresis for a universal product

    Scenario: leukapheresis performed
      Given an eligible participant
      And LeukapheresisPerformed on study day 12
      Then SEQ-05 is raised
      And nothing else is raised

    @boundary
    Scenario: no leukapheresis, no lymphodepletion
      Given an eligible participant
      Then SEQ-05 is not raised
      And nothing is raised

  Rule: SAFETY-CRS3, SAFETY-ICANS3 - ASTCT CRS and adult ICANS grade 3 or higher

    Scenario: CRS grade 3
      Given an eligible participant
      And an adverse event of CTCAE grade 3 with CRS grade 3 on day 2 after infusion
      Then SAFETY-CRS3 is raised with crs_grade = 3, days_after_infusion = 2
      And nothing else is raised

    @boundary
    Scenario: CRS grade 2
      Given an eligible participant
      And an adverse event of CTCAE grade 2 with CRS grade 2 on day 2 after infusion
      Then SAFETY-CRS3 is not raised
      And nothing is raised

    Scenario: ICANS grade 4
      Given an eligible participant
      And an adverse event of CTCAE grade 4 with ICANS grade 4 on day 5 after infusion
      Then SAFETY-ICANS3 is raised with icans_grade = 4
      And nothing else is raised

    @boundary
    Scenario: ICANS grade 2
      Given an eligible participant
      And an adverse event of CTCAE grade 2 with ICANS grade 2 on day 5 after infusion
      Then SAFETY-ICANS3 is not raised
      And nothing is raised

  Rule: SAFETY-GVHD - any acute or chronic GVHD

    Scenario: acute GVHD grade 1
      Given an eligible participant
      And an adverse event of CTCAE grade 1 with acute GVHD grade 1 on day 20 after infusion
      Then SAFETY-GVHD is raised with gvhd_acute_grade = 1
      And nothing else is raised

    Scenario: mild chronic GVHD
      Given an eligible participant
      And an adverse event of CTCAE grade 1 with mild chronic GVHD on day 120 after infusion
      Then SAFETY-GVHD is raised with gvhd_chronic_severity = "mild"
      And nothing else is raised

    @boundary
    Scenario: an adverse event without GVHD
      Given an eligible participant
      And an adverse event of CTCAE grade 2 on day 20 after infusion
      Then SAFETY-GVHD is not raised
      And nothing is raised

  Rule: SAFETY-SAE - any serious adverse event

    Scenario: a serious adverse event
      Given an eligible participant
      And a serious adverse event of CTCAE grade 3 on day 40 after infusion
      Then SAFETY-SAE is raised with days_after_infusion = 40
      And nothing else is raised

    @boundary
    Scenario: a non-serious adverse event of grade 3
      Given an eligible participant
      And an adverse event of CTCAE grade 3 on day 40 after infusion
      Then SAFETY-SAE is not raised
      And nothing is raised
