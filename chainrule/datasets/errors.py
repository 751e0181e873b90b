"""Errors raised while finding, downloading or reading dataset files."""

from __future__ import annotations

__all__ = ["DatasetNotFoundError", "CorruptFileError", "DownloadError"]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are in none of the searched folders (and were not downloaded).

    The message lists the files expected, every folder searched and how to fix it, in
    the words of the Python API (``data_dir=``, ``download=True``);
    ``for_command_line`` says the same in those of ``chainrule`` (``--data-dir``).
    """

    def __init__(self, message: str, for_command_line: str | None = None) -> None:
        super().__init__(message)
        self.for_command_line = for_command_line or message


class CorruptFileError(ValueError):
    """A dataset file exists but is damaged: bad gzip, wrong header, size or checksum."""

    def __init__(self, path: object, problem: str, advice: str | None = None) -> None:
        self.path = path
        self.problem = problem
        if advice is not None:  # a good file of something else: not to be deleted
            super().__init__(f"{path}: {problem}. {advice}")
            self.for_command_line = str(self)
            return
        super().__init__(
            f"{path}: {problem}. The file is corrupt, truncated or not the expected "
            f"dataset; delete it and load again (it is downloaded afresh when "
            f"download=True), or replace it with a good copy."
        )
        #: The same advice in the words of the command line.
        self.for_command_line = (
            f"{path}: {problem}. The file is corrupt, truncated or not the expected "
            "dataset; delete it and run again (it is downloaded afresh when it is in no "
            "folder of --data-dir or $CHAINRULE_DATA), or replace it with a good copy.")


class DownloadError(OSError):
    """No mirror delivered the file intact (network error, HTTP error or MD5 mismatch)."""
