Feature: Safety alerts, once per adverse event, and relapse

  Rule: SAFETY-CRS3 - cytokine release syndrome grade 3 or higher (ASTCT)

    Scenario: CRS grade 3
      Given an eligible participant
      And an adverse event of CTCAE grade 3 with CRS grade 3 on day 2 after infusion
      Then SAFETY-CRS3 is raised with crs_grade = 3
      And nothing else is raised

    @boundary
    Scenario: CRS grade 2
      Given an eligible participant
      And an adverse event of CTCAE grade 3 with CRS grade 2 on day 2 after infusion
      Then SAFETY-CRS3 is not raised
      And nothing is raised

  Rule: SAFETY-ICANS3 - ICANS grade 3 or higher (ASTCT)

    Scenario: ICANS grade 3
      Given an eligible participant
      And an adverse event of CTCAE grade 3 with ICANS grade 3 on day 2 after infusion
      Then SAFETY-ICANS3 is raised
      And nothing else is raised

    @boundary
    Scenario: ICANS grade 2
      Given an eligible participant
      And an adverse event of CTCAE grade 3 with ICANS grade 2 on day 2 after infusion
      Then SAFETY-ICANS3 is not raised
      And nothing is raised

  Rule: SAFETY-SAE - a serious adverse event starts expedited reporting

    Scenario: A serious adverse event
      Given an eligible participant
      And a serious adverse event of CTCAE grade 3 on day 2 after infusion
      Then SAFETY-SAE is raised
      And nothing else is raised

    @boundary
    Scenario: A grade 3 adverse event that is not serious
      Given an eligible participant
      And an adverse event of CTCAE grade 3 on day 2 after infusion
      Then SAFETY-SAE is not raised
      And nothing is raised

    Scenario: All three alerts from one event
      Given an eligible participant
      And a serious adverse event of CTCAE grade 3 with CRS grade 4 and ICANS grade 3 on day 2 after infusion
      Then the findings are SAFETY-CRS3, SAFETY-ICANS3, SAFETY-SAE

  Rule: RELAPSE - a relapse reported

    Scenario: A relapse after infusion
      Given an eligible participant
      And a relapse with UPCR 1.2 mg/mg on day 200 after infusion
      Then RELAPSE is raised with infused = true, upcr_mg_mg = 1.2
      And nothing else is raised

    @boundary
    Scenario: A flare reported as an adverse event is no relapse
      Given an eligible participant
      And an adverse event of CTCAE grade 2 on day 200 after infusion
      Then RELAPSE is not raised
      And nothing is raised
