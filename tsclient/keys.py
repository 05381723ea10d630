"""TorchServe's token authorization keys: the key file, bearer headers and a shared KeyStore.

TorchServe (0.12) writes `key_file.json` in its working directory:

    {"management": {"key": "...", "expiration time": "..."},
     "inference":  {"key": "...", "expiration time": "..."},
     "API":        {"key": "..."}}

Kinds are spelled in lower case everywhere in this project: "inference", "management", "api".
The inference and management keys expire after `token_expiration_min`; the API key does not and
has TorchServe issue new ones (`tsclient.client.TorchServeClient.issue_key`). `KeyStore.renew`
is called when TorchServe rejects a key: it takes a newer key from the file if there is one,
otherwise has one issued; an advisory lock on the file keeps processes from issuing keys over
each other.
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

KEY_FILE_NAME = "key_file.json"
KINDS = ("inference", "management", "api")
# How TorchServe spells each kind in key_file.json.
FILE_KINDS = {"inference": "inference", "management": "management", "api": "API"}
READ_ATTEMPTS = 3  # TorchServe rewrites the file in place: a read may catch it half written


def parse_key_file(text: str) -> dict[str, str]:
    """Keys by kind from the text of key_file.json; raises ValueError when it is malformed."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("key file is not a JSON object")
    keys = {}
    for kind, field in FILE_KINDS.items():
        entry = data.get(field)
        if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry["key"]:
            keys[kind] = entry["key"]
    return keys


def read_key_file(path: Path | None) -> dict[str, str]:
    """Keys by kind from a key file; empty when there is none or it cannot be read."""
    if path is None:
        return {}
    for attempt in range(READ_ATTEMPTS):
        try:
            return parse_key_file(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            if attempt == READ_ATTEMPTS - 1:
                log.warning("cannot read the TorchServe key file: %s", type(exc).__name__)
                return {}
            time.sleep(0.02)
    return {}


def bearer(key: str | None) -> dict[str, str]:
    """The Authorization header carrying `key` (none when there is no key: token auth off)."""
    return {"Authorization": f"Bearer {key}"} if key else {}


class KeyStore:
    """The current key of each kind: a fixed one from the configuration, else the key file's."""

    def __init__(
        self, key_file: str | Path | None, fixed: Mapping[str, str | None] | None = None
    ) -> None:
        self.path = Path(key_file) if key_file else None
        self.fixed = {kind: key for kind, key in (fixed or {}).items() if key}
        unknown = set(self.fixed) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown key kinds {sorted(unknown)}; expected {list(KINDS)}")
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, kind: str) -> str | None:
        """The key to send for `kind`, or None when there is none (token auth off)."""
        if kind in self.fixed:
            return self.fixed[kind]
        if kind not in self._keys:
            with self._lock:
                self._keys = read_key_file(self.path) or self._keys
        return self._keys.get(kind)

    def current(self) -> dict[str, str]:
        """Every key, read from the file now (fixed keys on top)."""
        with self._lock:
            self._keys = read_key_file(self.path)
            return {**self._keys, **self.fixed}

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
            self._keys = read_key_file(self.path) or self._keys
            current = self._keys.get(kind)
            if current and current != rejected:
                log.info("picked up a new %s key from the key file", kind)
                return current
            if not issue(kind):
                return None
            self._keys = read_key_file(self.path) or self._keys
            current = self._keys.get(kind)
            if current and current != rejected:
                log.info("TorchServe issued a new %s key", kind)
                return current
            return None

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
