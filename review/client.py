"""Connecting to Argilla: the URL from the option or ARGILLA_API_URL, the key from ARGILLA_API_KEY only (never an
option, never logged), and the workspace and dataset a review lives in."""

from __future__ import annotations

import os
import warnings
from typing import Any

from review.dataset import require_argilla

DEFAULT_API_URL = "http://localhost:6900"


class ReviewError(ValueError):
    """A problem with the Argilla side of a review (missing key, unknown dataset, incompatible settings)."""


def api_url_of(api_url: str | None) -> str:
    return api_url or os.environ.get("ARGILLA_API_URL") or DEFAULT_API_URL


def connect(api_url: str | None = None, *, timeout: int = 60) -> Any:
    """An `rg.Argilla` client for the server; the key comes from ARGILLA_API_KEY."""
    rg = require_argilla()
    api_key = os.environ.get("ARGILLA_API_KEY")
    if not api_key:
        raise ReviewError("set ARGILLA_API_KEY to your Argilla API key (the server's 'My settings' page shows it)")
    url = api_url_of(api_url)
    try:
        client = rg.Argilla(api_url=url, api_key=api_key, timeout=timeout, retries=1)
        client.me  # noqa: B018  (authenticates now, so a bad key or URL fails here with a clear message)
    except Exception as exc:
        raise ReviewError(f"cannot use the Argilla server at {url}: {type(exc).__name__}: {_without_key(exc, api_key)}") from None
    return client


def _without_key(exc: Exception, api_key: str) -> str:
    return str(exc).replace(api_key, "***")


def workspace_of(client: Any, name: str | None, *, create: bool) -> Any:
    """The named workspace (created when asked and missing), or the user's first one."""
    rg = require_argilla()
    if name:
        workspace = client.workspaces(name=name)
        if workspace is None:
            if not create:
                raise ReviewError(f"Argilla workspace {name!r} does not exist")
            workspace = rg.Workspace(name=name, client=client).create()
        return workspace
    workspaces = list(client.workspaces)  # those the user can see
    if workspaces:
        return workspaces[0]
    if not create:
        raise ReviewError("the Argilla user has no workspace: pass --workspace")
    return rg.Workspace(name="curate", client=client).create()


def find_dataset(client: Any, name: str, workspace: str | None) -> Any:
    """The review dataset, or a ReviewError naming what was looked for."""
    ws = workspace_of(client, workspace, create=False)
    with warnings.catch_warnings():  # the SDK warns, then returns None: the error below says it better
        warnings.simplefilter("ignore", UserWarning)
        dataset = client.datasets(name=name, workspace=ws)
    if dataset is None:
        raise ReviewError(f"no Argilla dataset {name!r} in workspace {ws.name!r} (push it first: curate review push)")
    return dataset
