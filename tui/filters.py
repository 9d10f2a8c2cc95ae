"""The `/` filter language shared by every table.

`gpu state:failed,stopped -type:ops label:site=plant-a`: words are ANDed; a bare word
matches anywhere in the row's text; `key:value` matches one field (case-insensitive prefix,
`a,b` for either); a leading `-` or `!` negates; `label:k=v` matches a label exactly
(`label:k=a,b` for either value) and `label:k` only needs the key. Quoted phrases
(`"two words"`) stay one word.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Field", "Filter", "FilterError", "parse_filter"]


class FilterError(ValueError):
    """A filter the user typed that cannot be read; the message says what is accepted."""


@dataclass(frozen=True)
class Field(Generic[T]):
    """A filterable field of a row object: its values, and whether they are labels."""

    values: Callable[[T], Iterable[str]]
    labels: Callable[[T], Mapping[str, str]] | None = None


@dataclass(frozen=True)
class Term:
    key: str | None  # None: free text
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class Filter(Generic[T]):
    """A parsed filter; `matches(row)` is cheap enough to run over 10,000 rows per refresh."""

    text: str
    terms: tuple[Term, ...]
    fields: Mapping[str, Field[T]]
    haystack: Callable[[T], str]

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, row: T) -> bool:
        return all(self._term(term, row) != term.negate for term in self.terms)

    def _term(self, term: Term, row: T) -> bool:
        if term.key is None:
            text = self.haystack(row).lower()
            return all(value in text for value in term.values)
        field = self.fields[term.key]
        if field.labels is not None:
            labels = {k.lower(): v.lower() for k, v in field.labels(row).items()}
            last_key = ""
            for value in term.values:
                key, sep, wanted = value.partition("=")
                if not sep and last_key:  # `label:site=a,b`: site is a or b
                    key, sep, wanted = last_key, "=", value
                last_key = key if sep else ""
                if key in labels and (not sep or wanted in ("*", labels[key])):
                    return True
            return False
        have = [v.lower() for v in field.values(row)]
        return any(h.startswith(value) for value in term.values for h in have)


def parse_filter(
    text: str, fields: Mapping[str, Field[T]], haystack: Callable[[T], str]
) -> Filter[T]:
    """Parse what the user typed; raises FilterError naming the unknown key or bad quote."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise FilterError(f"cannot read the filter: {exc}") from None
    terms: list[Term] = []
    for word in words:
        negate = word[:1] in ("-", "!") and len(word) > 1
        body = word[1:] if negate else word
        key, sep, value = body.partition(":")
        if sep and key.lower() in fields:
            values = tuple(v.strip().lower() for v in value.split(",") if v.strip())
            if not values:
                raise FilterError(f"{key}: needs a value, e.g. {key}:{_example(key)}")
            terms.append(Term(key.lower(), values, negate))
        elif sep and key and " " not in key and key.isidentifier():
            known = ", ".join(sorted(fields))
            raise FilterError(f"unknown filter {key!r}: use free text or {known}")
        else:
            terms.append(Term(None, (body.lower(),), negate))
    return Filter(text, tuple(terms), fields, haystack)


def _example(key: str) -> str:
    return {"state": "failed", "type": "daemon", "label": "k=v"}.get(key, "value")
