"""Downloading dataset files from a list of mirrors, safely.

Each mirror is tried in turn. A download counts only if its MD5 matches the published
checksum of the archive: a mirror can be down, serve an error page, or deliver a
truncated file, and none of those may end up in the cache. The file is written through
a temporary file and renamed into place at the end, so an interrupted download never
leaves a partial file behind. Only the standard library (``urllib.request``) is used.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from chainrule._progress import progress_bar

from ._files import atomic_writer
from .errors import DownloadError

__all__ = ["download_file", "DOWNLOAD_TIMEOUT"]

#: Seconds to wait for a mirror to connect or to send the next piece of data.
DOWNLOAD_TIMEOUT = 30.0
_CHUNK = 1 << 20  # read 1 MiB at a time
_USER_AGENT = "chainrule-datasets/0.1 (Python urllib)"
_log = logging.getLogger("chainrule.datasets")


def _fetch(url: str, out: object, timeout: float, quiet: bool = False) -> str:
    """Copy ``url`` into the open binary file ``out``; return the data's MD5 hex digest.
    A bar counts the bytes on a terminal (``chainrule._progress``), none when ``quiet``."""
    import urllib.request  # here, not at the top: it pulls in http, ssl and email (~20 ms)

    # MD5 is fine here: it checks integrity against the published sums, not security.
    md5 = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        size = response.headers.get("Content-Length")
        with progress_bar(int(size) if size and size.isdigit() else None,
                          url.rsplit("/", 1)[-1], "B", False if quiet else None,
                          unit_scale=True) as bar:
            while chunk := response.read(_CHUNK):
                md5.update(chunk)
                out.write(chunk)  # type: ignore[attr-defined]
                bar.update(len(chunk))
    return md5.hexdigest()


def download_file(filename: str, mirrors: Sequence[str], md5: str, folder: Path | str,
                  timeout: float | None = None, quiet: bool = False) -> Path:
    """Download ``filename`` into ``folder`` from the first mirror that delivers it intact.

    Args:
        filename: e.g. ``"train-images-idx3-ubyte.gz"``; appended to each mirror's URL.
        mirrors: base URLs tried in order (``https://``, ``http://`` or ``file://``).
        md5: the published MD5 hex digest of the file.
        folder: where the file goes (created if needed).
        timeout: seconds per network operation; ``DOWNLOAD_TIMEOUT`` by default.
        quiet: do not report the download on stderr (a log line per mirror tried,
            and on a terminal a bar of the bytes received).

    Returns:
        The path of the downloaded file.

    Raises:
        DownloadError: every mirror failed; the message says why for each one.
    """
    import http.client

    destination = Path(folder) / filename
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        if not quiet:  # the library reports; the command line decides what people see
            _log.info("downloading %s", url)
        try:
            # A mismatch raises inside the ``with``, so atomic_writer discards the file.
            with atomic_writer(destination) as out:
                digest = _fetch(url, out, timeout, quiet)
                if digest != md5:
                    raise DownloadError(f"MD5 mismatch: got {digest}, expected {md5}")
            return destination
        # URLError, HTTPError, timeouts and DownloadError are all OSErrors; a malformed
        # URL is a ValueError; a connection cut mid-response an HTTPException.
        except (OSError, ValueError, http.client.HTTPException) as err:
            failures.append(f"  {url}: {err}")
    tried = "\n".join(failures) if failures else "  (no mirrors configured)"
    raise DownloadError(f"could not download {filename} from any mirror:\n{tried}")
