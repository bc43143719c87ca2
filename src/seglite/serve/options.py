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
    output: Literal["json", "mask", "overlay", "confidence", "cutout", "effect"] = Field(
        "json",
        description="json: summary only; mask: palette PNG of class indices; overlay: the image "
        "with classes painted; confidence: 8-bit PNG of one class's probability (needs class); "
        "cutout: RGBA PNG of the subject with a soft alpha matte; effect: the photo with "
        "effect= applied to its background",
    )
    effect: str | None = Field(
        None, description="for output=effect: blur or color:#RRGGBB (background replaced)"
    )
    classes: str | None = Field(
        None, description="cutout/effect: the subject's classes, comma-separated (default: "
        "all but background)",
    )  # fmt: skip
    feather: float | None = Field(None, ge=0, le=200, description="cutout/effect: soft edge, px")
    strength: float | None = Field(None, ge=0, le=500, description="effect=blur: radius, px")
    invert: bool = Field(False, description="cutout/effect: keep the background, not the subject")
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
        if self.output == "effect" and not self.effect:
            raise ValueError("output=effect needs effect=blur or effect=color:#RRGGBB")
        if self.effect and self.output != "effect":
            raise ValueError("effect is only used with output=effect (output=cutout needs none)")
        matte = self.output in ("cutout", "effect")
        for name in ("classes", "feather", "strength"):
            if getattr(self, name) is not None and not matte:
                raise ValueError(f"{name} is only used with output=cutout or output=effect")
        if self.invert and not matte:
            raise ValueError("invert is only used with output=cutout or output=effect")
        return self

    def effect_spec(self):
        """The seglite.effects.Effect this request asks for (cutout or effect=), or None."""
        if self.output not in ("cutout", "effect"):
            return None
        from ..effects import parse

        spec = "cutout" if self.output == "cutout" else (self.effect or "")
        if spec.lower().startswith("image:"):
            raise OptionError(
                "effect=image: would read a file on the server: use effect=blur or "
                "effect=color:#RRGGBB (or compose the cutout yourself)"
            )
        if self.output == "effect" and spec.lower().strip() == "cutout":
            raise OptionError("effect=cutout: ask for output=cutout instead")
        return parse(spec, strength=self.strength, invert=self.invert)

    def class_names(self) -> list[str] | None:
        if not self.classes:
            return None
        return [c.strip() for c in self.classes.split(",") if c.strip()] or None


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
    opts.effect_spec()  # a bad effect spec is a 422 before the upload is read
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
