"""The OpenAPI side: response models, the hand-written parts of POST /v1/segment's schema
(it reads its body itself, so FastAPI cannot infer them), and their registration."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from .options import RequestOptions


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. bad_image, too_large")
    detail: str = Field(description="what went wrong and what to do")


class ClassShare(BaseModel):
    index: int
    label: str
    fraction: float = Field(description="share of the image's pixels, 0..1")
    color: str = Field(description="#rrggbb, as in the mask and overlay")


class SegmentTimings(BaseModel):
    decode: float
    preprocess: float
    invoke: float
    postprocess: float
    total: float = Field(description="decode + preprocess + invoke + postprocess")
    invocations: int
    queue: float = Field(description="waiting for a free worker")
    encode: float = Field(description="drawing and PNG encoding")
    server: float = Field(description="from the request's arrival to the response body")


class SegmentResponse(BaseModel):
    model: str
    width: int
    height: int
    output: str
    accurate: bool
    classes: list[ClassShare] = Field(description="classes present, largest share first")
    labels: list[str] = Field(description="all the model's labels; mask pixel values index this")
    timings_ms: SegmentTimings
    image: str | None = Field(None, description="base64 PNG (image outputs with embed=true)")
    image_type: str | None = None


class ModelInfo(BaseModel):
    name: str
    description: str
    file: str
    input_size: list[int] = Field(description="[height, width]")
    accurate_scales: list[float] = Field(description="the tiles' scales that accurate=true runs")
    classes: int
    labels: list[str]
    colors: list[str]
    output: str = Field(description="logits (class scores) or argmax (class ids only)")
    confidence: bool = Field(description="whether output=confidence is available")
    quantized: bool | None
    workers: int
    threads: int
    default: bool


class ModelsResponse(BaseModel):
    default: str
    accurate_scales: list[float] = Field(
        description="accurate=true's scales, unless a model names its own"
    )
    unpainted: list[str] = Field(description="class names overlays leave uncoloured")
    max_upload_mb: float
    max_pixels: int
    models: list[ModelInfo]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready, saturated (every place taken), starting or draining")
    models: list[str]
    workers: int
    queue: int
    capacity: int
    in_progress: int
    running: int
    served: int
    rejected: int


def segment_openapi() -> dict[str, Any]:
    props = RequestOptions.model_json_schema(by_alias=True)["properties"]
    params = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": spec.get("description", ""),
            "schema": {k: v for k, v in spec.items() if k not in ("title", "description")},
        }
        for name, spec in props.items()
    ]
    binary = {"schema": {"type": "string", "format": "binary"}}
    form = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}, **props},
    }
    return {
        "parameters": params,
        "requestBody": {
            "required": True,
            "description": "The image: a multipart upload (field `file`, options as fields or "
            "in the query) or the raw image as the body (options in the query).",
            "content": {
                "multipart/form-data": {"schema": form},
                "image/*": binary,
                "application/octet-stream": binary,
            },
        },
    }


SEGMENT_DOC = """Segment one image.

Send it as multipart/form-data (`curl -F file=@photo.jpg`) or as the raw body
(`curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'`). Options go in the query
string, or as form fields beside the file.

`output=json` answers the summary. `mask`, `overlay` and `confidence` answer the PNG itself
(`image/png`; the summary is in the `X-Seglite-Model`, `X-Seglite-Size` and
`X-Seglite-Classes` headers, timings in `Server-Timing`), or, with `embed=true`, the JSON
summary with the PNG base64-encoded in `image`.

The mask is a palette PNG: each pixel's value is an index into `labels`, its colour the
class colour. The confidence PNG is 8-bit grey: 255 means probability 1.
"""


def register_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Put models referenced only from hand-written OpenAPI parts into components/schemas."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for m in models:
            js = m.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                comps.setdefault(name, sub)
            comps.setdefault(m.__name__, js)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
