"""The wire-model base: Bacalhau names on the wire, case-insensitive on input."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

EXACT_KEYS: dict[str, bool] = {"exact_keys": True}
"""Validation context for data bacedge wrote itself (its NATS messages): keys are spelled
as the wire names and no value is a stray null, so nothing is rewritten. Skipping the
rewrite is ~a third of decoding an offer, which every placement costs."""


W = TypeVar("W", bound="WireModel")
_set = object.__setattr__


class WireModel(BaseModel):
    """Serialises with Bacalhau's exact key names and accepts any key case on input.

    Bacalhau job specs are written both as `Name:` and `name:`; matching keys
    case-insensitively here means every model (API body, CLI file, NATS message)
    gets the same tolerance without a separate normalisation pass.
    """

    model_config = ConfigDict(
        populate_by_name=True, extra="ignore", validate_default=False, defer_build=True
    )

    _key_map: ClassVar[dict[str, str]] = {}
    _wire_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        mapping: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            wire = field.alias or name
            mapping[wire.lower()] = wire
            mapping.setdefault(name.lower(), wire)
        cls._key_map = mapping
        cls._wire_keys = frozenset(mapping.values())

    @model_validator(mode="before")
    @classmethod
    def _match_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is EXACT_KEYS or not isinstance(data, dict):
            return data
        if cls._wire_keys.issuperset(data) and None not in data.values():
            # Keys spelled exactly and no nulls, as every message bacedge sends itself:
            # nothing to rewrite (the walk below is half the cost of decoding an offer).
            return data
        mapping = cls._key_map
        out: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue  # YAML `env:` with nothing under it means the default
            wire = mapping.get(key.lower(), key) if isinstance(key, str) else key
            out[wire] = value
        return out

    @classmethod
    def assemble(cls: type[W], **values: Any) -> W:
        """`model_construct` for a caller that gives every field, each already of its type:
        no validation and no walk over the fields for defaults, about 5x cheaper. For
        what the orchestrator builds on every state change (history events: four per
        placement). A field left out or misspelt is a programming error, refused here."""
        if values.keys() != cls.model_fields.keys():
            wrong = sorted(values.keys() ^ cls.model_fields.keys())
            raise TypeError(f"{cls.__name__}.assemble needs exactly its fields; check {wrong}")
        model = cls.__new__(cls)
        _set(model, "__dict__", values)
        _set(model, "__pydantic_fields_set__", set(values))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict with Bacalhau's key names."""
        return self.model_dump(by_alias=True, mode="json")
