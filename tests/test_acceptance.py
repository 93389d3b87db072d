"""The foundation's headline: fixed-point STOP learns digits online to >= 97% on the
held-out 25%, with its float twin trained beside it, through the public command."""
import json

import pytest

from edgelearn.cli import main


@pytest.mark.slow
def test_digits_fixed_stop_reaches_97_percent(capsys):
    code = main(["train", "--data", "digits", "--learner", "stop", "--executor", "fixed", "--twin", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_samples"] == 450
    assert report["final_test_accuracy"]["fixed"] >= 0.97
    # the float twin ran beside it, from the same start, and agrees to within a few points
    assert abs(report["final_test_accuracy"]["float"] - report["final_test_accuracy"]["fixed"]) < 0.03
