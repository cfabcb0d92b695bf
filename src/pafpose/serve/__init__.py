"""``pafpose serve``: pose estimation over HTTP, a JSON API and a browser page.

``create_app(estimator, settings)`` builds the FastAPI application; requests that arrive
together are batched (:mod:`pafpose.serve.batching`), uploads are checked before they are
decoded (:mod:`pafpose.serve.images`). Needs the ``serve`` extra (``pip install
"pafpose[serve]"``); ``import pafpose.serve`` alone stays light, so that the command line
starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pafpose.serve.settings import ServeSettings

if TYPE_CHECKING:
    from pafpose.serve.app import create_app


def __getattr__(name: str) -> object:
    """``create_app`` is imported on first use (it needs fastapi and torch)."""
    if name == "create_app":
        try:
            from pafpose.serve.app import create_app
        except ModuleNotFoundError as err:
            if err.name not in ("fastapi", "starlette", "uvicorn", "multipart", "python_multipart", "pydantic"):
                raise
            raise ImportError(f"pafpose serve needs the serve extra: pip install 'pafpose[serve]' ({err})") from err
        return create_app
    raise AttributeError(f"module 'pafpose.serve' has no attribute {name!r}")


__all__ = ["ServeSettings", "create_app"]
