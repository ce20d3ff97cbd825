Feature: Follow-up visits - in their window after infusion, none missed
  Windows (an ASSUMPTION): D7, D14, D28 +-2 days; M3 (day 90), M6 (day 180) +-7; M12 (365), M18 (545), M24 (730) +-14.

  Rule: VISIT-01 - each visit inside its window

    @boundary
    Scenario Outline: A visit on the last or first day of its window
      Given an eligible participant
      And visit <visit> on day <day> after infusion
      Then VISIT-01 is not raised
      And nothing is raised

      Examples:
        | visit | day |
        | D7    | 9   |
        | D7    | 5   |
        | M3    | 97  |
        | M12   | 351 |

    Scenario Outline: A visit a day outside its window
      Given an eligible participant
      And visit <visit> on day <day> after infusion
      Then VISIT-01 is raised with visit = <visit>, visit_day = <day>
      And nothing else is raised

      Examples:
        | visit | day |
        | D7    | 10  |
        | D7    | 4   |
        | M3    | 98  |
        | M12   | 350 |

  Rule: VISIT-02 - a window closed with no visit, once an event proves it closed

    Scenario: D14 missed, seen at D28
      Given an eligible participant
      And visit D14 missed
      Then VISIT-02 is raised with visit = D14
      And nothing else is raised

    Scenario: D7 and D14 missed
      Given an eligible participant
      And visit D7 and D14 missed
      Then VISIT-02 is raised twice
      And nothing else is raised

    Scenario: M24 missed, nothing after
      Given an eligible participant
      And visit M24 missed
      Then nothing is raised

    @boundary
    Scenario: M24 missed, the clock on the last day of its window
      Given an eligible participant
      And visit M24 missed
      And the clock ticks on day 744 after infusion
      Then VISIT-02 is not raised
      And nothing is raised

    Scenario: M24 missed, the clock the day after
      Given an eligible participant
      And visit M24 missed
      And the clock ticks on day 745 after infusion
      Then VISIT-02 is raised
      And nothing else is raised

    Scenario Outline: No visit is due once the participant or their consent has left
      Given an eligible participant
      And visit M24 missed
      And <who> withdrawn on day 600 after infusion
      And the clock ticks on day 800 after infusion
      Then nothing is raised

      Examples:
        | who             |
        | the participant |
        | consent         |
