"""The Kubernetes API client, shared by the cluster backend and the debug-pod node access.

The official client is synchronous: every call goes through :func:`call`, which runs it in a
thread (``asyncio.to_thread``) and translates the client's errors, once, into connreset's
(:class:`~connreset.errors.BackendError`). The kubeconfig is loaded in one place,
:func:`load_client`, after the guard (:mod:`connreset.kubernetes.guard`) allowed the context.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from connreset.errors import BackendError, ValidationError

T = TypeVar("T")


class NotFound(BackendError):
    """The API answered 404 for the object."""


class Conflict(BackendError):
    """The API answered 409: the object exists already."""


def _translate(exc: BaseException, what: str) -> BackendError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = exc.status
        reason = exc.reason or ""
        message = f"{what}: the API answered {status} {reason}".rstrip()
        if status == 404:
            return NotFound(message)
        if status == 409:
            return Conflict(message)
        if status in (401, 403):
            return BackendError(f"{message} (see docs/rbac.yaml for the permissions connreset needs)")
        return BackendError(message)
    return BackendError(f"{what}: {type(exc).__name__}: {exc}")


async def call(what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run one blocking client call in a thread; its errors become BackendError (404: NotFound).

    Args:
        what: says what the call does, for the error message (e.g. ``create namespace x``).
    """
    try:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
    except BackendError:
        raise
    except Exception as exc:
        raise _translate(exc, what) from exc


def load_client(context: str, paths: Sequence[Path]) -> Any:
    """An ``ApiClient`` for ``context`` from the kubeconfig files (blocking: call in a thread).

    The process-wide default configuration is left alone, and credentials the kubeconfig's auth
    plugins refresh are not written back.

    Raises:
        ValidationError: the kubeconfig cannot be loaded for that context.
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    load: Any = config.load_kube_config  # untyped in the client
    try:
        load(
            config_file=os.pathsep.join(str(p) for p in paths),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, ValueError) as exc:
        raise ValidationError(f"kubeconfig context {context!r}: {exc}") from None
    return client.ApiClient(configuration=configuration)
