Feature: Inclusion 9 - organ function, and inclusions 10 and 11
  Screening labs count when taken within 28 days before enrollment (an ASSUMPTION of the protocol).
  A multiple of the laboratory's ULN is compared exactly: exactly 3x ULN is in range.

  Rule: Inclusion 9.1 - haematology

    @boundary
    Scenario Outline: Just inside the haematology limits
      Given an eligible participant
      And <lab> <value> <unit>
      Then ELIG-IN09 is not raised
      And nothing is raised

      Examples:
        | lab         | value | unit    |
        | lymphocytes | 1.0   | 10*9/L  |
        | lymphocytes | 1000  | /uL     |
        | WBC         | 3.0   | 10*3/uL |
        | neutrophils | 1.0   | 10*9/L  |
        | hemoglobin  | 60    | g/L     |
        | hemoglobin  | 6.0   | g/dL    |

    Scenario Outline: Just outside the haematology limits
      Given an eligible participant
      And <lab> <value> <unit>
      Then ELIG-IN09 is raised
      And nothing else is raised

      Examples:
        | lab         | value | unit   |
        | lymphocytes | 0.99  | 10*9/L |
        | lymphocytes | 990   | /uL    |
        | WBC         | 2.9   | 10*9/L |
        | neutrophils | 0.9   | 10*9/L |
        | hemoglobin  | 59    | g/L    |
        | hemoglobin  | 5.9   | g/dL   |

    Scenario: G-CSF ended 14 days before the neutrophil sample (day 3)
      Given an eligible participant
      And G-CSF from study day -30 to -11
      Then ELIG-IN09 is raised with gcsf_within_14_days_of_neutrophils = true
      And nothing else is raised

    @boundary
    Scenario: G-CSF ended 15 days before the neutrophil sample
      Given an eligible participant
      And G-CSF from study day -30 to -12
      Then ELIG-IN09 is not raised
      And nothing is raised

    Scenario: G-CSF ongoing
      Given an eligible participant
      And G-CSF from study day -30, ongoing
      Then ELIG-IN09 is raised
      And nothing else is raised

    Scenario: G-CSF started after the sample
      Given an eligible participant
      And G-CSF from study day 4 to 6
      Then nothing is raised

  Rule: Inclusion 9.2 - liver: ALT, AST <= 3x ULN; bilirubin <= 1.5x ULN (3x with Gilbert syndrome)

    @boundary
    Scenario Outline: Exactly at the liver limits
      Given an eligible participant
      And <lab> <value> <unit> with ULN <uln>
      Then ELIG-IN09 is not raised
      And nothing is raised

      Examples:
        | lab             | value | unit   | uln   |
        | ALT             | 120   | U/L    | 40    |
        | AST             | 105   | U/L    | 35    |
        | total bilirubin | 1.8   | mg/dL  | 1.2   |
        | total bilirubin | 30.78 | umol/L | 20.52 |

    Scenario Outline: Just above the liver limits
      Given an eligible participant
      And <lab> <value> <unit> with ULN <uln>
      Then ELIG-IN09 is raised
      And nothing else is raised

      Examples:
        | lab             | value | unit  | uln |
        | ALT             | 121   | U/L   | 40  |
        | AST             | 106   | U/L   | 35  |
        | total bilirubin | 1.81  | mg/dL | 1.2 |

    Scenario: ALT above 3x ULN is quoted with the other organ-function values
      Given an eligible participant
      And ALT 121 U/L with ULN 40
      Then ELIG-IN09 is raised with alt_uln_multiple = 3.025, egfr_schwartz = 99.870909

    @boundary
    Scenario: Gilbert syndrome: bilirubin exactly 3x ULN
      Given an eligible participant
      And history of Gilbert syndrome
      And total bilirubin 3.6 mg/dL with ULN 1.2
      Then ELIG-IN09 is not raised
      And nothing is raised

    Scenario: Gilbert syndrome: bilirubin above 3x ULN
      Given an eligible participant
      And history of Gilbert syndrome
      And total bilirubin 3.61 mg/dL with ULN 1.2
      Then ELIG-IN09 is raised
      And nothing else is raised

  Rule: Inclusion 9.3 - eGFR (bedside Schwartz) >= 30 mL/min/1.73m2

    @boundary
    Scenario Outline: eGFR at or above 30
      Given an eligible participant
      And <height> cm tall
      And creatinine <creatinine>
      Then ELIG-IN09 is not raised
      And nothing is raised

      Examples:
        | height | creatinine                    | egfr |
        | 150    | 2.065 mg/dL                   | 30.0 |
        | 140    | 1.9 mg/dL                     | 30.4 |
        | 150    | 182.5 umol/L by LOINC 14682-9 | 30.0 |

    Scenario Outline: eGFR below 30
      Given an eligible participant
      And <height> cm tall
      And creatinine <creatinine>
      Then ELIG-IN09 is raised
      And nothing else is raised

      Examples:
        | height | creatinine                  | egfr |
        | 150    | 2.07 mg/dL                  | 29.9 |
        | 150    | 183 umol/L by LOINC 14682-9 | 29.9 |

  Rule: Inclusion 9.4 - coagulation: INR and PT <= 1.5x ULN (INR without a ULN: ULN 1.0, an ASSUMPTION)

    @boundary
    Scenario Outline: Exactly at the coagulation limits
      Given an eligible participant
      And <lab>
      Then ELIG-IN09 is not raised
      And nothing is raised

      Examples:
        | lab                         |
        | INR 1.5 {INR}               |
        | INR 1.8 {INR} with ULN 1.2  |
        | PT 20.25 s with ULN 13.5    |

    Scenario Outline: Just above the coagulation limits
      Given an eligible participant
      And <lab>
      Then ELIG-IN09 is raised
      And nothing else is raised

      Examples:
        | lab                      |
        | INR 1.51 {INR}           |
        | PT 20.3 s with ULN 13.5  |

  Rule: Inclusion 10 - ANA >= 1:80

    @boundary
    Scenario: ANA 1:80
      Given an eligible participant
      And ANA 1:80
      Then ELIG-IN10 is not raised
      And nothing is raised

    Scenario Outline: ANA below 1:80
      Given an eligible participant
      And ANA <titre>
      Then ELIG-IN10 is raised
      And nothing else is raised

      Examples:
        | titre    |
        | 1:40     |
        | negative |

  Rule: Inclusion 11 - ECOG 0 to 2

    @boundary
    Scenario: ECOG 2
      Given an eligible participant
      And ECOG 2
      Then ELIG-IN11 is not raised
      And nothing is raised

    Scenario: ECOG 3
      Given an eligible participant
      And ECOG 3
      Then ELIG-IN11 is raised with ecog = 3
      And nothing else is raised
