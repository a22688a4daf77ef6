"""scalingModifiers formulas: a safe evaluator for KEDA's expression dialect. Never `eval`.

KEDA evaluates `advanced.scalingModifiers.formula` with expr-lang over the trigger names.
We accept its arithmetic subset: numbers, trigger names, `+ - * / % ** ^`, comparisons,
`&& || !` (and `and or not`), the ternary `c ? a : b`, and min/max/abs/ceil/floor/round.
The grammar is parsed by lark; the tree is compiled once into closures.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

_GRAMMAR = r"""
?start: ternary
?ternary: or_expr
        | or_expr "?" ternary ":" ternary   -> cond
?or_expr: and_expr
        | or_expr ("||" | "or") and_expr    -> or_
?and_expr: not_expr
         | and_expr ("&&" | "and") not_expr -> and_
?not_expr: comparison
         | ("!" | "not") not_expr           -> not_
?comparison: sum
           | sum COMP sum                   -> compare
?sum: product
    | sum ADD product                       -> binary
?product: power
        | product MUL power                 -> binary
?power: unary
      | unary POW power                     -> binary
?unary: atom
      | "-" unary                           -> neg
      | "+" unary
?atom: NUMBER                               -> number
     | NAME "(" [ternary ("," ternary)*] ")" -> call
     | NAME                                 -> var
     | "(" ternary ")"

COMP: "==" | "!=" | "<=" | ">=" | "<" | ">"
ADD: "+" | "-"
MUL: "*" | "/" | "%"
POW: "**" | "^"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/
%import common.WS
%ignore WS
"""

_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)

Value = float | bool
Evaluator = Callable[[Mapping[str, float]], Value]


class FormulaError(ValueError):
    """A formula that does not parse, names an unknown trigger, or fails to evaluate."""


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise FormulaError("division by zero")
    return a / b


def _modulo(a: float, b: float) -> float:
    if b == 0:
        raise FormulaError("modulo by zero")
    return math.fmod(a, b)


def _power(a: float, b: float) -> float:
    try:
        return float(a**b)
    except (OverflowError, ZeroDivisionError) as exc:
        raise FormulaError(f"{a} ** {b}: {exc}") from None


_BINARY: dict[str, Callable[[float, float], Value]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "%": _modulo,
    "**": _power,
    "^": _power,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

_FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": lambda *xs: float(min(xs)),
    "max": lambda *xs: float(max(xs)),
    "abs": lambda x: float(abs(x)),
    "ceil": lambda x: float(math.ceil(x)),
    "floor": lambda x: float(math.floor(x)),
    "round": lambda x: float(round(x)),
}
_ARITY = {
    "min": (1, 99),
    "max": (1, 99),
    "abs": (1, 1),
    "ceil": (1, 1),
    "floor": (1, 1),
    "round": (1, 1),
}


def _number(value: Value) -> float:
    if isinstance(value, bool):
        raise FormulaError("a comparison was used where a number is needed")
    return value


@dataclass(frozen=True)
class Formula:
    """A compiled formula over trigger names."""

    source: str
    names: frozenset[str]
    _evaluate: Evaluator

    @classmethod
    def compile(cls, source: str, known_names: Iterable[str]) -> Formula:
        """Parse `source`; every name must be one of `known_names` (raises FormulaError)."""
        known = frozenset(known_names)
        try:
            tree = _PARSER.parse(source)
        except UnexpectedInput as exc:
            raise FormulaError(f"syntax error at column {exc.column}") from None
        except LarkError as exc:
            raise FormulaError(f"syntax error: {exc}") from None
        used: set[str] = set()
        evaluate = _compile(tree, known, used)
        return cls(source=source, names=frozenset(used), _evaluate=evaluate)

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The formula's value for these trigger values (raises FormulaError)."""
        result = _number(self._evaluate(values))
        if not math.isfinite(result):
            raise FormulaError(f"result is not a finite number ({result})")
        return result


def _compile(node: Tree[Token] | Token, known: frozenset[str], used: set[str]) -> Evaluator:
    if isinstance(node, Token):  # pragma: no cover - the grammar wraps every token
        raise FormulaError(f"unexpected {node!r}")
    kind = node.data
    kids = node.children
    if kind == "number":
        constant = float(str(kids[0]))
        return lambda _v: constant
    if kind == "var":
        name = str(kids[0])
        if name not in known:
            raise FormulaError(
                f"unknown trigger name {name!r}; triggers are: {', '.join(sorted(known))}"
            )
        used.add(name)
        return lambda v: v[name]
    if kind == "call":
        fname = str(kids[0])
        if fname not in _FUNCTIONS:
            raise FormulaError(f"unknown function {fname!r}; use {', '.join(sorted(_FUNCTIONS))}")
        args = [_compile(k, known, used) for k in kids[1:]]
        low, high = _ARITY[fname]
        if not low <= len(args) <= high:
            raise FormulaError(f"{fname}() takes {low}..{high} arguments, got {len(args)}")
        function = _FUNCTIONS[fname]
        return lambda v: function(*(_number(a(v)) for a in args))
    if kind == "neg":
        inner = _compile(kids[0], known, used)
        return lambda v: -_number(inner(v))
    if kind == "not_":
        inner = _compile(kids[0], known, used)
        return lambda v: not inner(v)
    if kind in ("binary", "compare"):
        left = _compile(kids[0], known, used)
        op = _BINARY[str(kids[1])]
        right = _compile(kids[2], known, used)
        return lambda v: op(_number(left(v)), _number(right(v)))
    if kind == "and_":
        a, b = (_compile(k, known, used) for k in kids)
        return lambda v: bool(a(v)) and bool(b(v))
    if kind == "or_":
        a, b = (_compile(k, known, used) for k in kids)
        return lambda v: bool(a(v)) or bool(b(v))
    if kind == "cond":
        test, then, other = (_compile(k, known, used) for k in kids)
        return lambda v: then(v) if test(v) else other(v)
    raise FormulaError(f"unsupported expression {kind!r}")  # pragma: no cover


@functools.lru_cache(maxsize=256)
def compiled(source: str, known_names: tuple[str, ...]) -> Formula:
    """`Formula.compile`, memoized: a controller evaluates the same formula every poll."""
    return Formula.compile(source, known_names)
