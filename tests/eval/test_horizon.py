"""Useful-skill horizon: the last lead of the initial run of leads with ACC >= 0.6, on hand-made ACC sequences."""

import pytest

from megageo.errors import MegageoError
from megageo.eval.horizon import describe_horizon, skill_horizon

LEADS = [6.0, 12.0, 18.0, 24.0, 30.0, 36.0]


@pytest.mark.parametrize(("acc", "horizon"), [
    ([0.99, 0.9, 0.7, 0.6, 0.59, 0.65], 24.0),  # exactly 0.6 still counts; the recovery at 36 h is not credited
    ([0.99, 0.9, 0.61, 0.59, 0.4, 0.3], 18.0),
    ([0.99, 0.5, 0.9, 0.9, 0.9, 0.9], 6.0),
    ([0.9, 0.9, 0.8, 0.7, 0.65, 0.6], 36.0),  # never below 0.6: the last scored lead
    ([0.6] * 6, 36.0),  # never below and never above it
    ([0.59, 0.7, 0.8, 0.9, 0.9, 0.9], None),  # short at the first lead: no horizon, whatever follows
    ([0.5, 0.4, 0.3, 0.2, 0.1, 0.0], None),  # never reaches 0.6
    ([0.0] * 6, None),  # the climatology forecast (no anomaly)
])
def test_horizon_is_the_end_of_the_initial_skilful_run(acc, horizon):
    assert skill_horizon(acc, LEADS) == horizon


def test_the_threshold_can_be_chosen():
    assert skill_horizon([0.9, 0.85, 0.75], [6, 12, 18], threshold=0.8) == 12.0


@pytest.mark.parametrize(("acc", "leads"), [([0.9, 0.8], [6.0]), ([], [])])
def test_one_acc_per_lead_is_required(acc, leads):
    with pytest.raises(MegageoError, match="one ACC per lead"):
        skill_horizon(acc, leads)


@pytest.mark.parametrize(("horizon", "text"), [
    (24.0, "24 h"),
    (36.0, "≥ 36 h"),  # skilful at every scored lead: the horizon lies at or beyond the last one
    (None, "none (ACC < 0.6 at 6 h)"),
])
def test_description_says_when_the_horizon_lies_beyond_the_scored_leads(horizon, text):
    assert describe_horizon(horizon, LEADS) == text
