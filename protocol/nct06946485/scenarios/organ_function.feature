Feature: NCT06946485 inclusion 6 - adequate organ function, and the screening assessments
  The screening results are taken on study day 3; enrollment is on study day 10.

  Rule: ELIG-IN06 - Inclusion 6: bone marrow, liver, renal, coagulation and cardiac function

    Scenario Outline: a result just outside its limit
      Given an eligible participant
      And <result>
      Then ELIG-IN06 is raised with <fact> = <value>
      And nothing else is raised

      Examples:
        | result                                 | fact                   | value    |
        | WBC 2.9 10*9/L                         | wbc                    | 2.9      |
        | neutrophils 0.9 10*9/L                 | neutrophils            | 0.9      |
        | hemoglobin 59 g/L                      | hemoglobin             | 59       |
        | ALT 121 U/L with ULN 40                | alt_uln_multiple       | 3.025    |
        | AST 121 U/L with ULN 40                | ast_uln_multiple       | 3.025    |
        | total bilirubin 1.85 mg/dL with ULN 1.2 | bilirubin_uln_multiple | 1.541667 |
        | INR 1.81 with ULN 1.2                  | inr_uln_multiple       | 1.508333 |
        | PT 20.3 s with ULN 13.5                | pt_uln_multiple        | 1.503704 |
        | LVEF 54 %                              | lvef                   | 54       |

    @boundary
    Scenario Outline: a result exactly at its limit
      Given an eligible participant
      And <result>
      Then ELIG-IN06 is not raised
      And nothing is raised

      Examples:
        | result                                |
        | WBC 3.0 10*9/L                        |
        | neutrophils 1.0 10*9/L                |
        | hemoglobin 60 g/L                     |
        | ALT 120 U/L with ULN 40               |
        | AST 120 U/L with ULN 40               |
        | total bilirubin 1.8 mg/dL with ULN 1.2 |
        | INR 1.8 with ULN 1.2                  |
        | PT 20.25 s with ULN 13.5              |
        | LVEF 55 %                             |

    Scenario: Gilbert's syndrome, bilirubin above 3.0x ULN
      Given an eligible participant
      And history of Gilbert syndrome
      And total bilirubin 3.7 mg/dL with ULN 1.2
      Then ELIG-IN06 is raised with gilbert_syndrome = true
      And nothing else is raised

    @boundary
    Scenario: Gilbert's syndrome, bilirubin exactly 3.0x ULN
      Given an eligible participant
      And history of Gilbert syndrome
      And total bilirubin 3.6 mg/dL with ULN 1.2
      Then ELIG-IN06 is not raised
      And nothing is raised

    Scenario: Cockcroft-Gault creatinine clearance below 60 mL/min
      # (140 - 50) x 60 / (72 x 1.07) x 0.85 = 59.579...
      Given an eligible participant
      And born on 1975-06-01
      And a woman weighing 60 kg
      And creatinine 1.07 mg/dL
      Then ELIG-IN06 is raised with crcl_cockcroft_gault = 59.579439
      And nothing else is raised

    @boundary
    Scenario: Cockcroft-Gault creatinine clearance exactly 60 mL/min
      # (140 - 50) x 60 / (72 x 1.0625) x 0.85 = 60
      Given an eligible participant
      And born on 1975-06-01
      And a woman weighing 60 kg
      And creatinine 1.0625 mg/dL
      Then ELIG-IN06 is not raised
      And nothing is raised

    @boundary
    Scenario: the same creatinine in a man is a higher clearance
      Given an eligible participant
      And born on 1975-06-01
      And a man weighing 60 kg
      And creatinine 1.07 mg/dL
      Then ELIG-IN06 is not raised
      And nothing is raised

    Scenario: a colony-stimulating factor (GM-CSF) within 2 weeks before the neutrophil count
      Given an eligible participant
      And GM-CSF from study day -20 to -11
      Then ELIG-IN06 is raised with csf_within_2_weeks_of_neutrophils = true
      And nothing else is raised

    @boundary
    Scenario: the colony-stimulating factor stopped 15 days before the neutrophil count
      Given an eligible participant
      And G-CSF from study day -20 to -12
      Then ELIG-IN06 is not raised
      And nothing is raised

  Rule: ELIG-MISSING - a screening assessment a criterion needs is absent or outdated

    Scenario: no LVEF
      Given an eligible participant
      And no LVEF result
      Then ELIG-MISSING is raised with missing = ["lvef"]
      And nothing else is raised

    Scenario: no BILAG-2004
      Given an eligible participant
      And no BILAG-2004
      Then ELIG-MISSING is raised with missing = ["bilag_2004"]
      And nothing else is raised

    Scenario: the BILAG-2004 29 days before enrollment
      Given an eligible participant
      And consent signed on study day -30
      And the BILAG-2004 on study day -19
      Then ELIG-MISSING is raised with outdated = ["bilag_2004"]
      And nothing else is raised

    @boundary
    Scenario: the BILAG-2004 28 days before enrollment
      Given an eligible participant
      And consent signed on study day -30
      And the BILAG-2004 on study day -18
      Then ELIG-MISSING is not raised
      And nothing is raised
