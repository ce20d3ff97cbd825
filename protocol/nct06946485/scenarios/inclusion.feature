Feature: NCT06946485 inclusion 1-5 - classification, disease activity, refractoriness, age
  The clean participant is a woman of 35 at consent (2026-01-05), screened on study day 3 and
  enrolled on study day 10.

  Rule: ELIG-IN01 - Inclusion 5: aged 18-65 years at consent

    Scenario: 17 at consent (the 18th birthday is the next day)
      Given an eligible participant
      And born on 2008-01-06
      Then ELIG-IN01 is raised with age_at_consent = 17
      And nothing else is raised

    @boundary
    Scenario: 18 on the day of consent
      Given an eligible participant
      And born on 2008-01-05
      Then ELIG-IN01 is not raised
      And nothing is raised

    Scenario: 66 at consent
      Given an eligible participant
      And born on 1960-01-05
      Then ELIG-IN01 is raised with age_at_consent = 66
      And nothing else is raised

    @boundary
    Scenario: 65 at consent, the day before the 66th birthday
      Given an eligible participant
      And born on 1960-01-06
      Then ELIG-IN01 is not raised
      And nothing is raised

  Rule: ELIG-IN02 - Inclusion 1: 2019 EULAR/ACR classification

    Scenario: EULAR/ACR score 9
      Given an eligible participant
      And EULAR/ACR 2019 score 9
      Then ELIG-IN02 is raised with eular_acr_score = 9
      And nothing else is raised

    Scenario: ANA entry criterion not met
      Given an eligible participant
      And EULAR/ACR 2019 score 16 without the ANA entry criterion
      Then ELIG-IN02 is raised
      And nothing else is raised

    @boundary
    Scenario: EULAR/ACR score 10
      Given an eligible participant
      And EULAR/ACR 2019 score 10
      Then ELIG-IN02 is not raised
      And nothing is raised

  Rule: ELIG-IN03 - Inclusion 3: one BILAG-2004 grade A or two grade B domains

    Scenario: one grade B domain only
      Given an eligible participant
      And BILAG-2004 with 0 grade A and 1 grade B domain
      Then ELIG-IN03 is raised with bilag_a_count = 0, bilag_b_count = 1
      And nothing else is raised

    @boundary
    Scenario: two grade B domains
      Given an eligible participant
      And BILAG-2004 with 0 grade A and 2 grade B domains
      Then ELIG-IN03 is not raised
      And nothing is raised

    @boundary
    Scenario: one grade A domain
      Given an eligible participant
      And BILAG-2004 with 1 grade A and 0 grade B domains
      Then ELIG-IN03 is not raised
      And nothing is raised

  Rule: ELIG-IN04 - Inclusion 2: SLEDAI-2000 score >6

    Scenario: SLEDAI-2K 6
      Given an eligible participant
      And SLEDAI-2K 6
      Then ELIG-IN04 is raised with sledai_2k = 6
      And nothing else is raised

    @boundary
    Scenario: SLEDAI-2K 7
      Given an eligible participant
      And SLEDAI-2K 7
      Then ELIG-IN04 is not raised
      And nothing is raised

  Rule: ELIG-IN05 - Inclusion 4: failure of conventional therapy, or relapse after remission

    Scenario: glucocorticoids below 1 mg/kg/day
      Given an eligible participant
      And prior treatments:
        | agent                 | start      | end        | dose | unit    |
        | prednisone            | 2025-01-10 | 2025-04-10 | 0.9  | mg/kg/d |
        | cyclophosphamide      | 2025-01-10 | 2025-06-10 |      |         |
        | mycophenolate mofetil | 2025-01-10 | 2025-11-30 |      |         |
      Then ELIG-IN05 is raised with glucocorticoid_mg_per_kg_day = 0.9
      And nothing else is raised

    @boundary
    Scenario: 60 mg/day of prednisone at 60 kg is 1 mg/kg/day
      Given an eligible participant
      And prior treatments:
        | agent                 | start      | end        | dose | unit |
        | prednisone            | 2025-01-10 | 2025-04-10 | 60   | mg/d |
        | cyclophosphamide      | 2025-01-10 | 2025-06-10 |      |      |
        | mycophenolate mofetil | 2025-01-10 | 2025-11-30 |      |      |
      Then ELIG-IN05 is not raised
      And nothing is raised

    Scenario: no cyclophosphamide
      Given an eligible participant
      And prior treatments:
        | agent                 | start      | end        | dose | unit    |
        | prednisone            | 2025-01-10 | 2025-04-10 | 1    | mg/kg/d |
        | mycophenolate mofetil | 2025-01-10 | 2025-11-30 |      |         |
      Then ELIG-IN05 is raised with cyclophosphamide_given = false
      And nothing else is raised

    Scenario: the listed immunosuppressant for exactly 6 months (183 days) is not more than 6 months
      Given an eligible participant
      And prior treatments:
        | agent                 | start      | end        | dose | unit    |
        | prednisone            | 2025-01-10 | 2025-04-10 | 1    | mg/kg/d |
        | cyclophosphamide      | 2025-01-10 | 2025-06-10 |      |         |
        | tacrolimus            | 2025-01-10 | 2025-07-12 |      |         |
      Then ELIG-IN05 is raised
      And nothing else is raised

    @boundary
    Scenario: the listed immunosuppressant for 184 days
      Given an eligible participant
      And prior treatments:
        | agent                 | start      | end        | dose | unit    |
        | prednisone            | 2025-01-10 | 2025-04-10 | 1    | mg/kg/d |
        | cyclophosphamide      | 2025-01-10 | 2025-06-10 |      |         |
        | tacrolimus            | 2025-01-10 | 2025-07-13 |      |         |
      Then ELIG-IN05 is not raised
      And nothing is raised

    Scenario: remission after conventional therapy, no relapse
      Given an eligible participant
      And history of remission
      Then ELIG-IN05 is raised with remission_achieved = true
      And nothing else is raised

    @boundary
    Scenario: relapse after remission
      Given an eligible participant
      And history of remission
      And history of relapse after remission
      Then ELIG-IN05 is not raised
      And nothing is raised
