"""TorchServe's token authorization keys, kept current across expiry and rotation.

TorchServe (0.12) writes `key_file.json` in its working directory:

    {"management": {"key": "...", "expiration time": "..."},
     "inference":  {"key": "...", "expiration time": "..."},
     "API":        {"key": "..."}}

The inference and management keys expire after `token_expiration_min`; the API key does not, and
`GET <management>/token?type=inference|management` with it makes TorchServe issue a new key and
rewrite the file. `KeyStore.renew` is called when TorchServe rejects a key: it takes the newer
key from the file if there is one, otherwise has a new one issued, so the UI keeps working past
expiry without a restart. An advisory lock on the key file keeps the UI's processes from
issuing keys over each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

KINDS = ("inference", "management", "API")
READ_ATTEMPTS = 3  # TorchServe rewrites the file in place: a read may catch it half written


def parse_key_file(text: str) -> dict[str, str]:
    """Keys by kind from the text of key_file.json; raises ValueError when it is malformed."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("key file is not a JSON object")
    keys = {}
    for kind in KINDS:
        entry = data.get(kind)
        if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry["key"]:
            keys[kind] = entry["key"]
    return keys


class KeyStore:
    """The current key of each kind: a fixed one from the configuration, else the key file's."""

    def __init__(self, key_file: str | None, fixed: Mapping[str, str | None]) -> None:
        self.path = Path(key_file) if key_file else None
        self.fixed = {kind: key for kind, key in fixed.items() if key}
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, kind: str) -> str | None:
        """The key to send for `kind`, or None when there is none (token auth off)."""
        if kind in self.fixed:
            return self.fixed[kind]
        if kind not in self._keys:
            with self._lock:
                self._reload()
        return self._keys.get(kind)

    def renew(self, kind: str, rejected: str | None, issue: Callable[[str], bool]) -> str | None:
        """A key of `kind` other than the `rejected` one, or None when none can be had.

        In order: one another thread already found, a newer one in the file, one that
        `issue(kind)` makes TorchServe write to the file.
        """
        if kind in self.fixed or self.path is None:
            return None
        with self._lock, self._file_lock():
            current = self._keys.get(kind)
            if current and current != rejected:
                return current
            self._reload()
            current = self._keys.get(kind)
            if current and current != rejected:
                log.info("picked up a new %s key from the key file", kind)
                return current
            if not issue(kind):
                return None
            self._reload()
            current = self._keys.get(kind)
            if current and current != rejected:
                log.info("TorchServe issued a new %s key", kind)
                return current
            return None

    def _reload(self) -> None:
        """Replace the cached keys with the file's (keeping them when it cannot be read)."""
        if self.path is None:
            return
        for attempt in range(READ_ATTEMPTS):
            try:
                self._keys = parse_key_file(self.path.read_text(encoding="utf-8"))
                return
            except FileNotFoundError:
                return
            except (OSError, ValueError) as exc:
                if attempt == READ_ATTEMPTS - 1:
                    log.warning("cannot read the TorchServe key file: %s", type(exc).__name__)
                    return
                time.sleep(0.02)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive advisory lock on the key file across processes (none when it is absent)."""
        try:
            handle = self.path.open("rb") if self.path else None
        except OSError:
            handle = None
        if handle is None:
            yield
            return
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
