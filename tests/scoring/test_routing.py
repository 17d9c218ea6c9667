"""The next step of a scored lead and the rule that fired."""


from pipeline.config import RoutingParams
from pipeline.scoring.routing import next_step


def test_next_step_names_the_rule_that_fired() -> None:
    routing = RoutingParams(sales_ready_min_score=60, sales_ready_min_criteria=2, disqualify_below_score=10)
    assert next_step(72, 3, 4, routing) == (
        "sales_ready", "score 72 >= 60 and 3 of 4 qualification criteria met (>= 2)")
    assert next_step(72, 1, 4, routing)[0] == "nurture"
    assert next_step(5, 4, 4, routing) == ("disqualify", "score 5 < 10")
