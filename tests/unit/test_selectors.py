"""Label selectors (edge/selectors.py): Kubernetes' syntax and semantics, shared by job
and node listings, the scheduler's constraints and the CLI's --constraints."""

from __future__ import annotations

import pytest

from edge.models import Constraint
from edge.selectors import MAX_SELECTOR, SelectorError, all_match, matches, parse


def c(key: str, op: str, *values: str) -> Constraint:
    return Constraint(Key=key, Operator=op, Values=list(values))


def test_every_operator_parses_into_the_jobs_constraint_model() -> None:
    text = "env=prod, env2==x,tier!=low, zone in (a, b),zone2 notin (c),gpu,!arm,cores>4,mem<-2"
    assert parse(text) == [
        c("env", "=", "prod"),
        c("env2", "=", "x"),
        c("tier", "!=", "low"),
        c("zone", "in", "a", "b"),
        c("zone2", "notin", "c"),
        c("gpu", "exists"),
        c("arm", "!"),
        c("cores", "gt", "4"),
        c("mem", "lt", "-2"),
    ]
    assert parse("") == parse(" , ") == []
    assert parse("bacalhau_canary!=true") == [c("bacalhau_canary", "!=", "true")]
    # The Bacalhau CLI's default `job list --labels`, spaces and all:
    assert parse("bacalhau_canary != true") == [c("bacalhau_canary", "!=", "true")]
    assert parse("node.example.com/role=edge") == [c("node.example.com/role", "=", "edge")]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a b c", "is not a label requirement"),
        ("zone in (a", "unbalanced '('"),
        ("zone in a)", "unbalanced ')'"),
        ("zone in ((a))", "nested parentheses"),
        ("zone in (a,,b)", "a set needs values"),
        ("cores>many", "whole number"),
        ("cores>1e400", "whole number"),
        ("=x", "is not a label requirement"),
        ("a" * (MAX_SELECTOR + 1), "longer than"),
    ],
)
def test_bad_selectors_are_refused_naming_the_requirement(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_matching_follows_kubernetes() -> None:
    labels = {"env": "prod", "cores": "8"}
    assert matches(c("env", "=", "prod"), labels)
    assert not matches(c("env", "!=", "prod"), labels)
    assert matches(c("zone", "!=", "a"), labels)  # absent key: != holds
    assert matches(c("zone", "notin", "a"), labels) and not matches(c("zone", "in", "a"), labels)
    assert matches(c("cores", "gt", "4"), labels) and not matches(c("cores", "lt", "4"), labels)
    assert not matches(c("env", "gt", "4"), labels)  # not a number: no match
    assert matches(c("env", "exists"), labels) and matches(c("zone", "!"), labels)
    assert all_match(parse("env in (prod,dev),!zone,cores>4"), labels)
    assert not all_match(parse("env in (prod,dev),zone"), labels)
    assert all_match([], {})
