"""Optional engines (Optuna, its database drivers) are imported on first use, and a
missing one is named together with the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "import_extra"]


class MissingExtraError(ImportError):
    """An optional package is not installed; the message says which extra installs it."""


def install_hint(extra: str) -> str:
    """The command that installs ``extra`` into this checkout: ``pip install -e ".[X]"``."""
    return f'pip install -e ".[{extra}]"'


def import_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``; if it is missing, raise ``MissingExtraError`` saying that
    ``purpose`` needs it and that ``extra`` installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but something it needs is broken: show that
        raise MissingExtraError(f"{purpose} needs {module}, which is not installed: "
                                f"{install_hint(extra)}") from None
