Feature: Treatment - eligibility confirmation, order of steps, one infusion, its timing and dose
  Enrollment on study day 10 at 10:30, leukapheresis on day 12, lymphodepletion on day 26,
  infusion on day 30 of 13,750,000 cells at 27.5 kg (the low-dose target, 5x10^5 cells/kg).

  Rule: SEQ-01 - enrolled only after the investigator confirmed eligibility

    Scenario: No confirmation
      Given an eligible participant
      And no eligibility confirmation
      Then SEQ-01 is raised
      And nothing else is raised

    Scenario: Confirmed not eligible
      Given an eligible participant
      And the investigator confirms the participant not eligible
      Then SEQ-01 is raised with eligibility_confirmed_eligible = false
      And nothing else is raised

    @boundary
    Scenario: Confirmed at the minute of enrollment
      Given an eligible participant
      And eligibility confirmed at 10:30 on the enrollment day
      Then SEQ-01 is not raised
      And nothing is raised

  Rule: SEQ-02 - each step after enrollment and after the step it depends on

    Scenario: Leukapheresis before enrollment
      Given an eligible participant
      And leukapheresis on study day 9
      Then SEQ-02 is raised
      And nothing else is raised

    @boundary
    Scenario: Leukapheresis on the enrollment day, after it
      Given an eligible participant
      And leukapheresis on study day 10
      Then SEQ-02 is not raised
      And nothing is raised

    Scenario: Lymphodepletion without leukapheresis
      Given an eligible participant
      And no leukapheresis
      Then SEQ-02 is raised with step = LymphodepletionAdministered, requires = LeukapheresisPerformed
      And nothing else is raised

    Scenario: Infusion without lymphodepletion
      Given an eligible participant
      And no lymphodepletion
      Then SEQ-02 is raised
      And nothing else is raised

    Scenario: Leukapheresis of a participant never enrolled
      Given a screened participant not enrolled
      And LeukapheresisPerformed on study day 12 at 10:30
      Then SEQ-02 is raised with enrolled_before = false
      And nothing else is raised

    Scenario: A relapse before infusion (and the relapse alert)
      Given an eligible participant
      And no infusion
      And a relapse on study day 40 at 10:30
      Then the findings are SEQ-02, RELAPSE

  Rule: SEQ-03 - one CAR-T infusion only

    Scenario: A second infusion
      Given an eligible participant
      And a second CAR-T infusion on day -1 after infusion
      Then SEQ-03 is raised with infusion_number = 2
      And nothing else is raised

    @boundary
    Scenario: One infusion
      Given an enrolled participant not yet treated
      And LeukapheresisPerformed on study day 12
      And LymphodepletionAdministered on study day 26 with:
        """
        {"regimen": "fludarabine+cyclophosphamide"}
        """
      And CarTInfused on study day 30 with:
        """
        {"total_cells": 13750000.0, "weight_kg": 27.5, "product_lot": "LOT-1"}
        """
      Then SEQ-03 is not raised
      And nothing is raised

  Rule: SEQ-04 - infusion 2-14 days after lymphodepletion (an ASSUMPTION), both ends in

    @boundary
    Scenario Outline: Infusion at the ends of the window
      Given an eligible participant
      And lymphodepletion on study day <day>
      Then SEQ-04 is not raised
      And nothing is raised

      Examples:
        | day | days before infusion |
        | 28  | 2                    |
        | 16  | 14                   |

    Scenario Outline: Infusion just outside the window
      Given an eligible participant
      And lymphodepletion on study day <day>
      Then SEQ-04 is raised with days_after_lymphodepletion = <days>
      And nothing else is raised

      Examples:
        | day | days |
        | 29  | 1    |
        | 15  | 15   |

  Rule: DOSE-01 - infused cells/kg within +-20 % of the arm's target (an ASSUMPTION for "approximately")

    @boundary
    Scenario Outline: Exactly at +-20 %, or at the target
      Given an eligible participant
      And in the <arm>-dose arm
      And <cells> CAR-T cells infused
      Then DOSE-01 is not raised
      And nothing is raised

      Examples:
        | arm  | cells      |
        | low  | 11,000,000 |
        | low  | 16,500,000 |
        | high | 27,500,000 |

    Scenario Outline: Just outside +-20 %
      Given an eligible participant
      And in the <arm>-dose arm
      And <cells> CAR-T cells infused
      Then DOSE-01 is raised
      And nothing else is raised

      Examples:
        | arm  | cells      |
        | low  | 10,999,000 |
        | low  | 16,501,000 |
        | high | 13,750,000 |

    Scenario: The dose is quoted
      Given an eligible participant
      And 10,999,000 CAR-T cells infused
      Then DOSE-01 is raised with dose_ratio = 0.799927, arm = low_dose
