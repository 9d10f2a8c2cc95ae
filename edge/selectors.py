"""Kubernetes-style label selectors, as Bacalhau reads them everywhere labels are chosen:
`job list --labels`, `GET /jobs?labels=`, `GET /nodes?labels=`, and the `--constraints`
of `docker run`/`wasm run` (a job's `Constraints`).

`env=prod, zone in (a,b), !gpu, arch, tier!=x, cores>4`: requirements joined by commas
(outside parentheses), all of which must hold. A requirement is a `Constraint` (Key,
Operator, Values), the job model's own, so the scheduler matches node labels and the API
matches job labels with the same `matches`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from edge.models import Constraint

MAX_SELECTOR = 4096  # characters: a selector is typed by a person, not a document
_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$", re.IGNORECASE | re.DOTALL)
_CMP = re.compile(rf"^({_KEY})\s*(==|!=|=|>|<)\s*([^\s,()=!<>]*)$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_HELP = "use key=value, key!=value, key in (a,b), key notin (a,b), key>N, key<N, key or !key"


class SelectorError(ValueError):
    """A selector that cannot be read; the message names the requirement and the syntax."""


def parse(text: str) -> list[Constraint]:
    """The requirements of a selector, in order; empty text selects everything."""
    if len(text) > MAX_SELECTOR:
        raise SelectorError(f"label selector longer than {MAX_SELECTOR} characters")
    parts: list[str] = []
    depth, start = 0, 0
    for at, char in enumerate(text):
        if char == "(":
            depth += 1
            if depth > 1:
                raise SelectorError(f"nested parentheses in label selector {text!r}: {_HELP}")
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in label selector {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:at])
            start = at + 1
    if depth:
        raise SelectorError(f"unbalanced '(' in label selector {text!r}")
    parts.append(text[start:])
    return [_requirement(part.strip()) for part in parts if part.strip()]


def _requirement(part: str) -> Constraint:
    if match := _SET.match(part):
        values = [v.strip() for v in match.group(3).split(",")]
        if not all(values):
            raise SelectorError(f"{part!r}: a set needs values, as in key in (a,b)")
        return Constraint(Key=match.group(1), Operator=match.group(2).lower(), Values=values)
    if match := _CMP.match(part):
        key, operator, value = match.groups()
        if operator in (">", "<"):
            if not re.fullmatch(r"-?[0-9]{1,18}", value):
                raise SelectorError(f"{part!r}: {operator} compares with a whole number")
            return Constraint(Key=key, Operator="gt" if operator == ">" else "lt", Values=[value])
        return Constraint(Key=key, Operator="!=" if operator == "!=" else "=", Values=[value])
    if match := _EXISTS.match(part):
        return Constraint(Key=match.group(2), Operator="!" if match.group(1) else "exists")
    raise SelectorError(f"{part!r} is not a label requirement: {_HELP}")


def matches(constraint: Constraint, labels: Mapping[str, str]) -> bool:
    """Whether labels meet one requirement (Kubernetes' semantics: `!=` and `notin` hold
    for labels without the key; `in`, `=`, `gt` and `lt` need it)."""
    op = constraint.Operator.lower()
    value = labels.get(constraint.Key)
    values = constraint.Values
    if op in ("=", "=="):
        return value is not None and value in values[:1]
    if op == "!=":
        return value is None or value not in values[:1]
    if op == "in":
        return value is not None and value in values
    if op == "notin":
        return value is None or value not in values
    if op == "exists":
        return value is not None
    if op == "!":
        return value is None
    if op in ("gt", "lt"):
        try:
            number, bound = float(value or ""), float(values[0])
        except (ValueError, IndexError):
            return False
        return number > bound if op == "gt" else number < bound
    return False


def all_match(constraints: Iterable[Constraint], labels: Mapping[str, str]) -> bool:
    return all(matches(c, labels) for c in constraints)


@lru_cache(maxsize=64)
def _parsed(text: str) -> tuple[Constraint, ...]:
    return tuple(parse(text))


def text_matches(text: str, labels: Mapping[str, str]) -> bool:
    """`all_match` of a selector given as text (parsed once per distinct text): for the
    store's SQL function over stored job labels."""
    return all_match(_parsed(text), labels)
