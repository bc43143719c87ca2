"""The options of POST /v1/segment: one validated model, read from the query string and
multipart fields, and resolved against the models served (pool, class index) or a 422."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import OptionError
from .pool import ModelPool, Service


class RequestOptions(BaseModel):
    """Options of POST /v1/segment, from the query string or multipart form fields (turned
    into the Segmenter's per-call SegmentOptions by render.segmenter_options)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    model: str | None = Field(
        None, description="model name from GET /v1/models (default: the first)"
    )
    output: Literal["json", "mask", "overlay", "confidence"] = Field(
        "json",
        description="json: summary only; mask: palette PNG of class indices; overlay: the image "
        "with classes painted; confidence: 8-bit PNG of one class's probability (needs class)",
    )
    class_: str | None = Field(
        None, alias="class", description="class name or index, for output=confidence"
    )
    alpha: float = Field(0.55, ge=0.0, le=1.0, description="overlay opacity, 0..1")
    accurate: bool = Field(
        False, description="tiled multi-scale, mirrored inference: slower, sharper"
    )
    legend: bool = Field(False, description="draw a legend beside the overlay")
    embed: bool = Field(
        False, description="return image outputs as JSON with the PNG base64-encoded in `image`"
    )

    @model_validator(mode="after")
    def _class_goes_with_confidence(self) -> RequestOptions:
        if self.output == "confidence" and not self.class_:
            raise ValueError("output=confidence needs class=<name or index>, e.g. class=person")
        if self.class_ and self.output != "confidence":
            raise ValueError("class is only used with output=confidence")
        return self


_OPTION_NAMES = tuple((f.alias or name) for name, f in RequestOptions.model_fields.items())


def describe_errors(errors: Any) -> str:
    """Pydantic's error list as one line a user can act on."""
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = f"unknown option (known: {', '.join(_OPTION_NAMES)})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid options"


def parse_options(items: list[tuple[str, str]]) -> RequestOptions:
    raw: dict[str, str] = {}
    for key, value in items:
        if key in raw:
            raise OptionError(f"{key}: given more than once")
        raw[key] = value
    try:
        return RequestOptions.model_validate(raw)
    except ValidationError as exc:
        raise OptionError(describe_errors(exc.errors())) from None


def resolve(
    service: Service, items: list[tuple[str, str]]
) -> tuple[RequestOptions, ModelPool, int | None]:
    """Options, the model's pool and the confidence class index, or a 422."""
    opts = parse_options(items)
    pool = service.pool(opts.model)
    return opts, pool, class_index(pool, opts)


def class_index(pool: ModelPool, opts: RequestOptions) -> int | None:
    if opts.output != "confidence":
        return None
    if not pool.confidence:
        raise OptionError(
            f"{pool.name} outputs class ids only (an ArgMax): output=confidence is not available"
        )
    name = opts.class_ or ""
    n = len(pool.label_set)
    if name.isascii() and name.isdigit():
        if int(name) < n:
            return int(name)
        raise OptionError(f"class index {name} is out of range: {pool.name} has {n} classes")
    try:
        return pool.label_set.index(name)
    except KeyError:
        raise OptionError(
            f"{pool.name} has no class {name!r}; GET /v1/models lists its labels"
        ) from None
