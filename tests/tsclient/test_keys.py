"""tsclient/keys.py: key_file.json read, bearer headers, keys renewed once for many threads."""

import json
import threading
from pathlib import Path

import pytest

from tsclient.keys import KEY_FILE_NAME, KeyStore, bearer, parse_key_file, read_key_file

pytestmark = pytest.mark.unit


def write_keys(path: Path, inference: str, management: str = "m0", api: str = "a0") -> None:
    data = {
        "management": {"key": management, "expiration time": "2030-01-01T00:00:00Z"},
        "inference": {"key": inference, "expiration time": "2030-01-01T00:00:00Z"},
        "API": {"key": api},
    }
    path.write_text(json.dumps(data, indent=2))


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key_file.json"
    write_keys(path, "i0")
    return path


def test_parse_key_file_takes_every_kind():
    text = json.dumps({"inference": {"key": "i"}, "management": {"key": "m"}, "API": {"key": "a"}})
    assert parse_key_file(text) == {"inference": "i", "management": "m", "api": "a"}


def test_parse_key_file_as_torchserve_writes_it():
    text = json.dumps(
        {
            "management": {"key": "m", "expiration time": "2030-01-01T00:00:00Z"},
            "inference": {"key": "i", "expiration time": "2030-01-01T00:00:00Z"},
            "API": {"key": "a"},
            "x": 1,
        }
    )
    assert parse_key_file(text) == {"inference": "i", "management": "m", "api": "a"}


def test_read_key_file_is_empty_without_a_readable_file(tmp_path):
    assert read_key_file(None) == {}
    assert read_key_file(tmp_path / KEY_FILE_NAME) == {}
    (tmp_path / KEY_FILE_NAME).write_text("{half")
    assert read_key_file(tmp_path / KEY_FILE_NAME) == {}


def test_bearer_header():
    assert bearer("k") == {"Authorization": "Bearer k"}
    assert bearer(None) == {} and bearer("") == {}


def test_unknown_fixed_kinds_are_refused():
    with pytest.raises(ValueError, match="API"):
        KeyStore(None, {"API": "a"})


@pytest.mark.parametrize("text", ["", "{", "[]", '"key"'])
def test_parse_key_file_rejects_malformed_text(text):
    with pytest.raises(ValueError):
        parse_key_file(text)


def test_keys_come_from_the_file_and_are_cached(key_file):
    store = KeyStore(str(key_file), {})
    assert store.get("inference") == "i0"
    write_keys(key_file, "i1")
    assert store.get("inference") == "i0"  # read again only after a rejection
    assert store.current()["inference"] == "i1"  # or when asked for the file's keys now


def test_no_file_means_no_key(tmp_path):
    store = KeyStore(str(tmp_path / "absent.json"), {})
    assert store.get("inference") is None
    assert store.renew("inference", None, lambda kind: True) is None


def test_a_file_that_appears_later_is_picked_up(tmp_path):
    path = tmp_path / "key_file.json"
    store = KeyStore(str(path), {})
    assert store.get("inference") is None
    write_keys(path, "i0")
    assert store.get("inference") == "i0"


def test_renew_takes_a_newer_key_from_the_file_without_issuing(key_file):
    store = KeyStore(str(key_file), {})
    store.get("inference")
    write_keys(key_file, "i1")
    issued = []
    assert store.renew("inference", "i0", issued.append) == "i1"
    assert issued == []


def test_renew_has_a_key_issued_when_the_file_is_stale(key_file):
    store = KeyStore(str(key_file), {})
    store.get("inference")

    def issue(kind: str) -> bool:
        write_keys(key_file, "i1")  # what TorchServe does on GET /token?type=inference
        return True

    assert store.renew("inference", "i0", issue) == "i1"
    assert store.get("inference") == "i1"


def test_renew_gives_none_when_no_key_can_be_issued(key_file):
    store = KeyStore(str(key_file), {})
    assert store.renew("inference", "i0", lambda kind: False) is None
    assert store.renew("inference", "i0", lambda kind: True) is None  # issued, file unchanged


def test_fixed_keys_are_used_and_never_renewed(key_file):
    store = KeyStore(str(key_file), {"inference": "fixed", "api": None})
    assert store.get("inference") == "fixed"
    assert store.get("api") == "a0"
    assert store.renew("inference", "fixed", lambda kind: True) is None


def test_many_threads_rejected_at_once_issue_one_key(key_file):
    store = KeyStore(str(key_file), {})
    store.get("inference")
    issued = []

    def issue(kind: str) -> bool:
        issued.append(kind)
        write_keys(key_file, f"i{len(issued)}")
        return True

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(store.renew("inference", "i0", issue)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert issued == ["inference"]
    assert results == ["i1"] * 8
