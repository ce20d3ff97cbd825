Feature: Inclusion criteria 1-11, decided at enrollment
  Consent is on study day 0 (2025-11-03), the screening assessments on day 3, enrollment on day 10.
  The eligible participant is 10 years old, fully in range, and raises nothing.

  Scenario: The eligible participant raises nothing
    Given an eligible participant
    Then nothing is raised

  Rule: Inclusion 1 - age 6-18 at consent (6th birthday <= consent date < 19th birthday)

    @boundary
    Scenario Outline: Just inside the age range
      Given an eligible participant
      And born on <birth>
      Then ELIG-IN01 is not raised
      And nothing is raised

      Examples:
        | birth      | case                        |
        | 2019-11-03 | 6th birthday on consent day |
        | 2006-11-04 | day before 19th birthday    |

    Scenario Outline: Just outside the age range
      Given an eligible participant
      And born on <birth>
      Then ELIG-IN01 is raised
      And nothing else is raised

      Examples:
        | birth      | case                           |
        | 2019-11-04 | one day before 6th birthday    |
        | 2006-11-03 | on the 19th birthday (adult)   |

    Scenario: The age and consent date are quoted
      Given an eligible participant
      And born on 2019-11-04
      Then ELIG-IN01 is raised with age_at_consent = 5, consent_date = 2025-11-03

  Rule: Inclusion 2 - SLE by EULAR/ACR 2019: ANA entry criterion and score >= 10

    @boundary
    Scenario: Score 10
      Given an eligible participant
      And EULAR/ACR 2019 score 10
      Then ELIG-IN02 is not raised
      And nothing is raised

    Scenario: Score 9
      Given an eligible participant
      And EULAR/ACR 2019 score 9
      Then ELIG-IN02 is raised
      And nothing else is raised

    Scenario: ANA entry criterion not met
      Given an eligible participant
      And EULAR/ACR 2019 score 19 without the ANA entry criterion
      Then ELIG-IN02 is raised
      And nothing else is raised

  Rule: Inclusion 3 - active class III/IV (+-V) on a biopsy from consent - 183 days to enrollment

    @boundary
    Scenario Outline: An active class III or IV biopsy in its window
      Given an eligible participant
      And a class <class> kidney biopsy with active lesions
      And the kidney biopsy on study day <day>
      Then ELIG-IN03 is not raised
      And nothing is raised

      Examples:
        | class | day  |
        | III   | -40  |
        | IV+V  | -40  |
        | IV    | -183 |
        | IV    | 10   |

    Scenario Outline: Another class, no active lesions, or out of the window
      Given an eligible participant
      And a class <class> kidney biopsy <active> active lesions
      And the kidney biopsy on study day <day>
      Then ELIG-IN03 is raised
      And nothing else is raised

      Examples:
        | class | active  | day  |
        | II    | with    | -40  |
        | V     | with    | -40  |
        | IV    | without | -40  |
        | IV    | with    | -184 |
        | IV    | with    | 11   |

  Rule: Inclusion 4 - SLEDAI-2K >= 8

    @boundary
    Scenario: SLEDAI-2K 8
      Given an eligible participant
      And SLEDAI-2K 8
      Then ELIG-IN04 is not raised
      And nothing is raised

    Scenario: SLEDAI-2K 7
      Given an eligible participant
      And SLEDAI-2K 7
      Then ELIG-IN04 is raised with sledai_2k = 7
      And nothing else is raised

  Rule: Inclusion 5 - refractory: >= 2 immunosuppressants > 6 months without remission, or relapse; proteinuria not in remission

    Scenario: One immunosuppressant
      Given an eligible participant
      And immunosuppressants:
        | agent      | start      | end        |
        | tacrolimus | 2024-06-01 | 2025-12-01 |
      Then ELIG-IN05 is raised
      And nothing else is raised

    Scenario: The second agent exactly 183 days (not more than 6 months)
      Given an eligible participant
      And immunosuppressants:
        | agent            | start      | end        |
        | tacrolimus       | 2024-06-01 | 2025-12-01 |
        | cyclophosphamide | 2025-01-01 | 2025-07-03 |
      Then ELIG-IN05 is raised with immunosuppressants_over_6_months = 1
      And nothing else is raised

    @boundary
    Scenario: The second agent 184 days
      Given an eligible participant
      And immunosuppressants:
        | agent            | start      | end        |
        | tacrolimus       | 2024-06-01 | 2025-12-01 |
        | cyclophosphamide | 2025-01-01 | 2025-07-04 |
      Then ELIG-IN05 is not raised
      And nothing is raised

    @boundary
    Scenario: Ongoing agents count up to enrollment
      Given an eligible participant
      And immunosuppressants:
        | agent       | start      | end |
        | tacrolimus  | 2024-06-01 |     |
        | leflunomide | 2025-01-01 |     |
      Then ELIG-IN05 is not raised
      And nothing is raised

    Scenario: The same agent twice counts once
      Given an eligible participant
      And immunosuppressants:
        | agent      | start      | end        |
        | tacrolimus | 2023-01-01 | 2023-12-01 |
        | Tacrolimus | 2024-06-01 | 2025-12-01 |
      Then ELIG-IN05 is raised
      And nothing else is raised

    Scenario: Remission achieved
      Given an eligible participant
      And history of remission
      Then ELIG-IN05 is raised
      And nothing else is raised

    @boundary
    Scenario: Relapse after remission
      Given an eligible participant
      And history of remission
      And history of relapse after remission
      Then ELIG-IN05 is not raised
      And nothing is raised

    Scenario: Proteinuria in remission
      Given an eligible participant
      And history of proteinuria in remission
      Then ELIG-IN05 is raised
      And nothing else is raised

  Rule: Inclusion 6 - CD19-positive peripheral B cells by flow cytometry

    @boundary
    Scenario Outline: CD19-positive B cells
      Given an eligible participant
      And CD19 <result>
      Then ELIG-IN06 is not raised
      And nothing is raised

      Examples:
        | result                  |
        | 0.1 %                   |
        | positive                |
        | 5 /uL by LOINC 8116-6   |

    Scenario Outline: No CD19-positive B cells
      Given an eligible participant
      And CD19 <result>
      Then ELIG-IN06 is raised
      And nothing else is raised

      Examples:
        | result                |
        | 0 %                   |
        | negative              |
        | 0 /uL by LOINC 8116-6 |

  Rule: Inclusion 8 - the participant and, under 18 at consent, a guardian sign

    Scenario: A minor without the guardian's signature
      Given an eligible participant
      And consent signed by the participant only
      Then the findings are CONSENT-01, ELIG-IN08

    Scenario: No consent at all
      Given an eligible participant
      And consent signed by nobody
      Then the findings are CONSENT-01, ELIG-IN08

    @boundary
    Scenario: An 18-year-old signs alone
      Given an eligible participant
      And born on 2007-11-03
      And consent signed by the participant only
      Then ELIG-IN08 is not raised
      And nothing is raised
