"""Errors raised while finding, downloading or reading dataset files."""

from __future__ import annotations

__all__ = ["DatasetNotFoundError", "CorruptFileError", "DownloadError"]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are in none of the searched folders (and were not downloaded).

    The message lists the files expected, every folder searched and how to fix it.
    """


class CorruptFileError(ValueError):
    """A dataset file exists but is damaged: bad gzip, wrong header, size or checksum."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"{path}: {problem}. The file is corrupt, truncated or not the expected "
            f"dataset; delete it and load again (it is downloaded afresh when "
            f"download=True), or replace it with a good copy."
        )


class DownloadError(OSError):
    """No mirror delivered the file intact (network error, HTTP error or MD5 mismatch)."""
