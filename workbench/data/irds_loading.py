"""Reaching ir_datasets: loading an id, and wording what goes wrong in one line.

The one place both the ``irds:<id>`` datasets (:mod:`.irds`) and the data directory's
materialisation (:mod:`.materialise`) load ir_datasets ids through, so an unknown id, a missing
install, files never downloaded and a failed download read the same wherever they happen.
"""
from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterator

from ..core.errors import WorkbenchError, first_line

NOT_INSTALLED = "ir_datasets is not installed (pip install ir-datasets)"
#: what to do when ir_datasets lacks an id's files here
FILES_HINT = "with internet it downloads its files on first use, offline put them under $IR_DATASETS_HOME"


def import_ir_datasets(hint: str = "") -> Any:
    """The ir_datasets module; not installed is one line (followed by ``hint``, what to do instead)."""
    try:
        import ir_datasets
    except ImportError as error:
        raise WorkbenchError(NOT_INSTALLED + (f"; {hint}" if hint else "")) from error
    return ir_datasets


def load_irds(source: Any, hint: str = "") -> Any:
    """An ir_datasets dataset from its id (``msmarco-passage/trec-dl-2019/judged``), or ``source``
    as given when it is a dataset object already.

    Loading only builds the dataset object; nothing is downloaded until it is iterated. An unknown
    id, a missing install (then ``hint``) and a loader's own failure are each one line."""
    if not isinstance(source, str):
        return source
    ir_datasets = import_ir_datasets(hint)
    try:
        return ir_datasets.load(source)
    except KeyError:
        raise WorkbenchError(f"unknown ir_datasets id {source!r} (see https://ir-datasets.com)") from None
    except Exception as error:  # noqa: BLE001 - any failure of a third-party loader: one line
        raise irds_failure(source, error) from None


def quote_error(error: BaseException) -> str:
    """``Type: first line of the message`` (200 characters at most)."""
    return f"{type(error).__name__}: {first_line(error, limit=200)}"


def irds_failure(irds_id: str, error: BaseException) -> WorkbenchError:
    """The one-line error of ir_datasets failing to provide ``irds_id`` (files missing, network, a loader's error)."""
    return WorkbenchError(f"ir_datasets cannot provide {irds_id!r} here ({quote_error(error)}); {FILES_HINT}")


def network_error(error: BaseException) -> BaseException | None:
    """The failed download / connection inside ``error`` (itself, a cause, or a wrapped one), if any."""
    network_types: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror)
    try:  # ir_datasets downloads through requests
        import requests

        network_types += (requests.exceptions.RequestException,)
    except ImportError:  # pragma: no cover - requests is an ir_datasets dependency
        pass
    seen: set[int] = set()
    stack: list[Any] = [error]
    while stack:
        item = stack.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, network_types):
            return item
        if isinstance(item, BaseException):
            # RuntimeError('All download sources failed', [(mirror, exception), ...])
            stack.extend(a for a in item.args if isinstance(a, (BaseException, list, tuple)))
            stack.extend(e for e in (item.__cause__, item.__context__) if e is not None)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


@contextlib.contextmanager
def fetching(what: str, offline_hint: str) -> Iterator[None]:
    """Turn ir_datasets' failures while reading ``what`` into one WorkbenchError; a failed download
    says so, followed by ``offline_hint`` (what to do without internet)."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as error:  # noqa: BLE001 - re-raised with context below
        network = network_error(error)
        if network is not None:
            raise WorkbenchError(f"could not download {what} through ir_datasets ({quote_error(network)}); "
                                 + offline_hint) from error
        raise WorkbenchError(f"ir_datasets failed while reading {what} ({quote_error(error)})") from error
