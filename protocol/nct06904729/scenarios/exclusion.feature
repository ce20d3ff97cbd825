Feature: Exclusion criteria 1-10 and the required screening assessments

  Rule: Exclusions from the medical history, one rule id per exclusion number

    Scenario Outline: A history that excludes
      Given an eligible participant
      And history of <condition>
      Then <rule> is raised
      And nothing else is raised

      Examples:
        | rule      | condition                              |
        | ELIG-EX01 | kidney transplant                      |
        | ELIG-EX02 | serious drug allergy                   |
        | ELIG-EX03 | uncontrolled infection                 |
        | ELIG-EX04 | severe organ dysfunction               |
        | ELIG-EX05 | congenital immunoglobulin deficiency   |
        | ELIG-EX07 | malignancy in the last five years      |
        | ELIG-EX08 | severe CNS disease or mental illness   |
        | ELIG-EX09 | another clinical trial within 3 months |
        | ELIG-EX10 | previous CAR-T therapy                 |

    @boundary
    Scenario Outline: The history says no
      Given an eligible participant
      And no history of <condition>
      Then <rule> is not raised
      And nothing is raised

      Examples:
        | rule      | condition                              |
        | ELIG-EX01 | kidney transplant                      |
        | ELIG-EX02 | serious drug allergy                   |
        | ELIG-EX03 | uncontrolled infection                 |
        | ELIG-EX04 | severe organ dysfunction               |
        | ELIG-EX05 | congenital immunoglobulin deficiency   |
        | ELIG-EX07 | malignancy in the last five years      |
        | ELIG-EX08 | severe CNS disease or mental illness   |
        | ELIG-EX09 | another clinical trial within 3 months |
        | ELIG-EX10 | previous CAR-T therapy                 |

  Rule: Exclusion 6 - active HBV or HCV infection, HIV, syphilis

    Scenario Outline: An infection as the record defines it
      Given an eligible participant
      And <screen>
      And <confirmation>
      Then ELIG-EX06 is raised
      And nothing else is raised

      Examples:
        | screen            | confirmation                     |
        | HBsAg positive    | HBV DNA 250 [IU]/mL with ULN 20  |
        | anti-HBc positive | HBV DNA 50 [IU]/mL               |
        | anti-HCV positive | HCV RNA positive                 |
        | HIV positive      | syphilis negative                |
        | HIV equivocal     | syphilis negative                |
        | syphilis positive | HIV negative                     |

    @boundary
    Scenario Outline: Not an active infection
      Given an eligible participant
      And <screen>
      And <confirmation>
      Then ELIG-EX06 is not raised
      And nothing is raised

      Examples:
        | screen            | confirmation                    |
        | HBsAg positive    | HBV DNA 20 [IU]/mL with ULN 20  |
        | HBsAg negative    | HBV DNA 50 [IU]/mL              |
        | anti-HCV positive | HCV RNA negative                |

  Rule: Required screening assessments are present and within 28 days before enrollment

    Scenario Outline: An assessment absent
      Given an eligible participant
      And <change>
      Then ELIG-MISSING is raised
      And nothing else is raised

      Examples:
        | change                           |
        | no ALT result                    |
        | ALT 30 U/L                       |
        | HBsAg positive                   |
        | anti-HCV positive                |
        | no SLEDAI-2K                     |
        | no ECOG                          |
        | no EULAR/ACR 2019 classification |
        | no medical history recorded      |

    Scenario: An absent lab is named
      Given an eligible participant
      And no ALT result
      Then ELIG-MISSING is raised with missing = ["alt"], screening_window_days = 28

    @boundary
    Scenario: Labs exactly 28 days before enrollment
      Given an eligible participant
      And consent signed on study day -30
      And the screening labs on study day -18
      Then ELIG-MISSING is not raised
      And nothing is raised

    Scenario: Labs 29 days before enrollment
      Given an eligible participant
      And consent signed on study day -30
      And the screening labs on study day -19
      Then ELIG-MISSING is raised
      And nothing else is raised

    Scenario: SLEDAI-2K and ECOG outdated
      Given an eligible participant
      And consent signed on study day -30
      And SLEDAI-2K and ECOG on study day -19
      Then ELIG-MISSING is raised with outdated = ["sledai_2k", "ecog"]
      And nothing else is raised
