"""Kubernetes label selectors: parse the string form, match labels, render LabelSelectors.

Follows apimachinery's `labels.Parse`: equality (`a=b`, `a==b`, `a!=b`), set-based
(`a in (x,y)`, `a notin (x)`, `a`, `!a`) and numeric (`a>1`, `a<1`), comma-separated and
ANDed. Bad syntax raises Invalid naming the selector and the position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kube.port import Invalid

Operator = Literal["=", "!=", "in", "notin", "exists", "!", ">", "<"]

# apimachinery validation: qualified names for keys, label values (both at most 63 chars).
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_TOKEN = re.compile(r"\s*(?:(==|!=|[=!(),<>])|([^\s=!(),<>]+))")


def is_dns_subdomain(text: str) -> bool:
    """Whether `text` is an RFC 1123 subdomain (the rule for most object names)."""
    return len(text) <= 253 and _DNS_SUBDOMAIN.fullmatch(text) is not None


def label_key_error(key: str) -> str | None:
    """Why `key` is not a valid label key (`[prefix/]name`), or None if it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and not is_dns_subdomain(prefix):
        return f"label key {key!r}: the prefix must be a DNS subdomain"
    if len(name) > 63 or not _NAME.fullmatch(name):
        return (
            f"label key {key!r}: the name must be at most 63 alphanumeric characters, "
            "'-', '_' or '.', starting and ending with an alphanumeric character"
        )
    return None


def label_value_error(value: str) -> str | None:
    """Why `value` is not a valid label value, or None if it is."""
    if value == "" or (len(value) <= 63 and _NAME.fullmatch(value)):
        return None
    return (
        f"label value {value!r}: must be at most 63 alphanumeric characters, "
        "'-', '_' or '.', starting and ending with an alphanumeric character"
    )


@dataclass(frozen=True)
class Requirement:
    """One clause of a selector, e.g. `tier in (web,api)`."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()  # sorted and unique for in/notin

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return value is not None and value in self.values
            case "!=" | "notin":
                return value is None or value not in self.values
            case "exists":
                return value is not None
            case "!":
                return value is None
            case ">" | "<":
                if value is None or not _is_int(value):
                    return False
                bound = int(self.values[0])
                return int(value) > bound if self.operator == ">" else int(value) < bound

    def __str__(self) -> str:
        match self.operator:
            case "exists":
                return self.key
            case "!":
                return f"!{self.key}"
            case "in" | "notin":
                return f"{self.key} {self.operator} ({','.join(self.values)})"
            case _:
                return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """Requirements that must all hold; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def parse_selector(text: str) -> Selector:
    """Parse the string form of a label selector; Invalid on bad syntax."""
    return _Parser(text).selector()


def render_label_selector(selector: Mapping[str, Any] | None) -> str:
    """The string form of a metav1.LabelSelector (matchLabels and matchExpressions).

    Requirements are sorted by key, like apimachinery's `LabelSelectorAsSelector(...).String()`.
    """
    if not selector:
        return ""
    requirements = [
        Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    operators: dict[str, Operator] = {
        "In": "in",
        "NotIn": "notin",
        "Exists": "exists",
        "DoesNotExist": "!",
    }
    for index, expression in enumerate(selector.get("matchExpressions") or []):
        operator = operators.get(expression.get("operator", ""))
        if operator is None:
            raise Invalid(
                f"selector.matchExpressions[{index}].operator: must be one of "
                f"{', '.join(operators)}, got {expression.get('operator')!r}"
            )
        values = _canonical(expression.get("values") or ())
        requirements.append(Requirement(expression.get("key", ""), operator, values))
    requirements.sort(key=lambda requirement: requirement.key)
    return str(Selector(tuple(requirements)))


def _canonical(values: Iterable[str]) -> tuple[str, ...]:
    """A value set as a sorted tuple, so equal selectors compare and print equal."""
    return tuple(sorted(set(values)))


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


class _Parser:
    """Recursive descent over the tokens of one selector string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, int]] = []  # (token, position); operators are tokens too
        position = 0
        while position < len(text):
            found = _TOKEN.match(text, position)
            if found is None:  # only trailing whitespace is left
                break
            token = found.group(1) or found.group(2)
            self.tokens.append((token, found.start(found.lastindex or 1)))
            position = found.end()
        self.index = 0

    def error(self, message: str) -> Invalid:
        position = self.tokens[self.index][1] if self.index < len(self.tokens) else len(self.text)
        return Invalid(f"label selector {self.text!r}: {message} at position {position}")

    def peek(self) -> str | None:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.index += 1
        return token

    def selector(self) -> Selector:
        requirements: list[Requirement] = []
        if self.peek() is None:
            return Selector()
        while True:
            requirements.append(self.requirement())
            token = self.peek()
            if token is None:
                return Selector(tuple(requirements))
            if token != ",":
                raise self.error(f"expected ',' or the end, found {token!r}")
            self.take()

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(self.key(), "!")
        key = self.key()
        token = self.peek()
        if token in (None, ","):
            return Requirement(key, "exists")
        self.take()
        if token in ("=", "==", "!="):
            operator: Operator = "!=" if token == "!=" else "="
            return Requirement(key, operator, (self.exact_value(),))
        if token in ("in", "notin"):
            values = self.value_set()
            if not values:
                raise self.error(f"'{token}' needs at least one value")
            return Requirement(key, "in" if token == "in" else "notin", _canonical(values))
        if token in (">", "<"):
            value = self.take()
            if value is None or not _is_int(value):
                self.index -= 1
                raise self.error(f"'{token}' needs an integer value")
            return Requirement(key, ">" if token == ">" else "<", (value,))
        self.index -= 1
        raise self.error(f"expected an operator (=, ==, !=, in, notin, >, <), found {token!r}")

    def key(self) -> str:
        token = self.peek()
        if token is None or not _is_word(token):
            raise self.error(f"expected a label key, found {token or 'the end'!r}")
        problem = label_key_error(token)
        if problem:
            raise self.error(problem)
        self.take()
        return token

    def exact_value(self) -> str:
        token = self.peek()
        if token in (None, ","):
            return ""  # `a=` selects the empty value
        return self.value()

    def value(self) -> str:
        token = self.peek()
        if token is None or not _is_word(token):
            raise self.error(f"expected a label value, found {token or 'the end'!r}")
        problem = label_value_error(token)
        if problem:
            raise self.error(problem)
        self.take()
        return token

    def value_set(self) -> tuple[str, ...]:
        if self.take() != "(":
            self.index -= 1
            raise self.error("expected '('")
        values: list[str] = []
        while True:
            token = self.peek()
            if token == ")" and not values:
                self.take()
                return ()
            values.append("" if token in (",", ")") else self.value())
            token = self.take()
            if token == ")":
                return tuple(values)
            if token != ",":
                self.index -= 1
                raise self.error(f"expected ',' or ')', found {token or 'the end'!r}")


def _is_word(token: str) -> bool:
    return token not in ("==", "!=", "=", "!", "(", ")", ",", "<", ">")
