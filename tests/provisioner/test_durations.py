import pytest

from provisioner.durations import go_duration_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("720h", 2_592_000.0),
        ("1h30m", 5400.0),
        ("30s", 30.0),
        ("0s", 0.0),
        ("1m", 60.0),
        ("Never", None),
    ],
)
def test_go_durations(text, seconds):
    assert go_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["1d", "h", "10 m", "5mx", "-1h"])
def test_bad_durations_are_rejected(text):
    with pytest.raises(ValueError, match="not a duration"):
        go_duration_seconds(text)
