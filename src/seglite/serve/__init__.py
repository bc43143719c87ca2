"""seglite serve: an HTTP API and a web page over the Segmenter (needs ``seglite[serve]``).

``create_app(ServeConfig(...))`` builds the FastAPI app; ``seglite serve`` runs it with uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing seglite.serve.pool does not need FastAPI.
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
