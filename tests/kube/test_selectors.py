import pytest

from kube.port import Invalid
from kube.selectors import parse_selector, render_label_selector

LABELS = {"app": "web", "tier": "frontend", "version": "3", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app = web", True),
        ("app=api", False),
        ("app!=api", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web,api)", True),
        ("app in (api, db)", False),
        ("app notin (api,db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=frontend", True),
        ("app=web,tier=backend", False),
        ("app=web, tier in (frontend), !missing", True),
        ("empty=", True),
        ("app=", False),
        ("version>2", True),
        ("version<3", False),
        ("app>1", False),
        ("example.com/team=x", False),
    ],
)
def test_selector_matches_labels(selector: str, matches: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("app=web,", "expected a label key"),
        ("=web", "expected a label key, found '='"),
        ("app in web", "expected '('"),
        ("app in (web", "expected ',' or ')'"),
        ("app in ()", "'in' needs at least one value"),
        ("app notin ()", "'notin' needs at least one value"),
        ("app web", "expected an operator"),
        ("app=web tier=x", "expected ',' or the end, found 'tier'"),
        ("app>x", "'>' needs an integer value"),
        ("-app=web", "label key '-app'"),
        ("app=we b", "expected ',' or the end"),
        ("app=" + "x" * 64, "label value"),
        ("Bad_Prefix/app=x", "prefix must be a DNS subdomain"),
        ("!", "expected a label key, found 'the end'"),
    ],
)
def test_bad_selector_is_invalid_and_says_where(selector: str, message: str) -> None:
    with pytest.raises(Invalid, match="position") as raised:
        parse_selector(selector)
    assert message in str(raised.value)
    assert repr(selector) in str(raised.value)


def test_selector_renders_back_to_its_canonical_form() -> None:
    text = "app=web,tier in (b,a),!gone,present,v>1"
    assert str(parse_selector(text)) == "app=web,tier in (a,b),!gone,present,v>1"
    assert parse_selector(str(parse_selector(text))) == parse_selector(text)


def test_label_selector_object_renders_sorted_by_key() -> None:
    selector = {
        "matchLabels": {"tier": "web", "app": "shop"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert render_label_selector(selector) == "app=shop,!canary,env in (dev,prod),tier=web"
    assert render_label_selector({"matchLabels": {"app": "web"}}) == "app=web"
    assert render_label_selector(None) == ""


def test_label_selector_object_with_unknown_operator_is_invalid() -> None:
    with pytest.raises(Invalid, match=r"matchExpressions\[0\]\.operator"):
        render_label_selector({"matchExpressions": [{"key": "a", "operator": "Like"}]})
