"""stack/properties.py and the committed TorchServe configuration it renders."""

from __future__ import annotations

import pytest
import yaml

from recognition.limits import max_request_bytes
from stack.paths import CONFIG_FILE, REPO_ROOT
from stack.properties import (
    bind_targets,
    read_properties,
    resolve_config,
    url_of,
    write_properties,
)
from webui.config import from_env

pytestmark = pytest.mark.unit

CONFIG = read_properties(CONFIG_FILE.read_text())


def test_config_binds_everything_to_loopback_with_the_agreed_ports() -> None:
    assert bind_targets(CONFIG) == [
        ("127.0.0.1", 8080),
        ("127.0.0.1", 8081),
        ("127.0.0.1", 8082),
        ("127.0.0.1", 7070),
        ("127.0.0.1", 7071),
    ]


def test_config_security_defaults() -> None:
    assert CONFIG.get("disable_token_authorization", "false") == "false"
    assert CONFIG["enable_model_api"] == "false"
    assert CONFIG["metrics_mode"] == "prometheus"
    assert CONFIG["install_py_dep_per_model"] == "false"
    assert "enable_envvars_config" not in CONFIG  # overrides go through stack/ only


def test_max_request_size_is_derived_not_typed() -> None:
    """TorchServe's body limit comes from the upload limit, the one the web UI's derives from."""
    assert "max_request_size" not in CONFIG
    rendered = resolve_config(CONFIG)
    assert int(rendered["max_request_size"]) == max_request_bytes()
    assert int(rendered["max_request_size"]) == from_env({})["MAX_CONTENT_LENGTH"]
    overridden = resolve_config(CONFIG, {"TS_MAX_REQUEST_SIZE": "2000000"})
    assert overridden["max_request_size"] == "2000000"


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_cnn"])
def test_model_configs(name: str) -> None:
    config = yaml.safe_load((REPO_ROOT / "config" / "models" / f"{name}.yaml").read_text())
    assert 1 <= config["minWorkers"] <= config["maxWorkers"]
    assert config["batchSize"] > 1
    assert 0 < config["maxBatchDelay"] <= 5  # a lone request waits this long (ms)
    assert config["responseTimeout"] > 0
    assert "deviceType" not in config  # GPU when present, CPU otherwise


def test_properties_round_trip() -> None:
    text = "# comment\n\na = 1\nb=x=y\n! also a comment\n"
    props = read_properties(text)
    assert props == {"a": "1", "b": "x=y"}
    assert read_properties(write_properties(props)) == props


def test_environment_overrides_and_explicit_overrides() -> None:
    environ = {
        "TS_INFERENCE_ADDRESS": "http://0.0.0.0:9080",
        "TS_NUMBER_OF_GPU": "0",
        "TS_NOT_A_KEY": "x",
        "TS_METRICS_ADDRESS": "http://127.0.0.1:9082",
    }
    props = resolve_config(CONFIG, environ, {"metrics_address": "http://127.0.0.1:1"})
    assert props["inference_address"] == "http://0.0.0.0:9080"
    assert props["number_of_gpu"] == "0"
    assert "not_a_key" not in props
    assert props["metrics_address"] == "http://127.0.0.1:1"  # explicit beats environment
    assert props["management_address"] == CONFIG["management_address"]


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("https://example.org:8443", "https://example.org:8443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_url_of(address: str, url: str) -> None:
    assert url_of(address) == url
