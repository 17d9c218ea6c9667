"""The next step of a scored lead and the rule that fired."""


from pipeline.config import RoutingParams
from pipeline.scoring.routing import next_step


def test_next_step_names_the_rule_that_fired() -> None:
    routing = RoutingParams(sales_ready_min_score=60, sales_ready_min_criteria=2, disqualify_below_score=10)
    assert next_step(72, 3, 4, routing) == (
        "sales_ready", "Sales-ready: the score is 72 (60 or more needed) and 3 of 4 qualification criteria are met "
                       "(2 or more needed)")
    assert next_step(72, 1, 4, routing) == (
        "nurture", "Nurture: the score is 72, high enough, but 1 of 4 qualification criteria is met, fewer than "
                   "the 2 a sales-ready lead needs")
    assert next_step(45, 3, 4, routing) == ("nurture",
                                            "Nurture: the score is 45, below the sales-ready threshold of 60")
    assert next_step(3, 4, 4, routing) == ("disqualify",
                                           "Disqualify: the score is 3, below the nurture threshold of 10")
