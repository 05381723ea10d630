"""The web UI's settings from WEBUI_* environment variables."""

import pytest

from recognition.limits import MAX_IMAGE_BYTES
from webui import create_app
from webui.config import DEFAULTS, MIB, from_env

pytestmark = pytest.mark.unit


def test_defaults_point_at_a_local_torchserve_and_accept_the_upload_limit():
    settings = from_env({})
    assert settings["INFERENCE_URL"] == "http://127.0.0.1:8080"
    assert settings["MANAGEMENT_URL"] == "http://127.0.0.1:8081"
    assert settings["MODELS"] == {"mlp": "mnist_mlp", "cnn": "mnist_cnn"}
    assert settings["KEY_FILE"].endswith("run/torchserve/key_file.json")
    assert settings["MAX_IMAGE_BYTES"] == MAX_IMAGE_BYTES
    # the body limit leaves room for a base64 data URL of the largest image
    assert settings["MAX_CONTENT_LENGTH"] > MAX_IMAGE_BYTES * 4 / 3


def test_environment_overrides_each_setting():
    settings = from_env(
        {
            "WEBUI_INFERENCE_URL": "http://10.0.0.5:9080/",
            "WEBUI_MANAGEMENT_URL": "https://ts.internal:9081",
            "WEBUI_CNN_MODEL": "mnist_cnn_v2",
            "WEBUI_KEY_FILE": "/srv/ts/key_file.json",
            "WEBUI_INFERENCE_KEY": "abc",
            "WEBUI_READ_TIMEOUT": "1.5",
            "WEBUI_POOL_SIZE": "64",
            "WEBUI_MAX_UPLOAD_MB": "2",
            "UNRELATED": "ignored",
        }
    )
    assert settings["INFERENCE_URL"] == "http://10.0.0.5:9080"
    assert settings["MANAGEMENT_URL"] == "https://ts.internal:9081"
    assert settings["MODELS"]["cnn"] == "mnist_cnn_v2"
    assert settings["KEY_FILE"] == "/srv/ts/key_file.json"
    assert settings["INFERENCE_KEY"] == "abc"
    assert settings["READ_TIMEOUT"] == 1.5
    assert settings["POOL_SIZE"] == 64
    assert settings["MAX_IMAGE_BYTES"] == 2 * MIB


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBUI_INFERENCE_URL", "127.0.0.1:8080"),
        ("WEBUI_READ_TIMEOUT", "soon"),
        ("WEBUI_CONNECT_TIMEOUT", "0"),
        ("WEBUI_POOL_SIZE", "-1"),
        ("WEBUI_MLP_MODEL", "../mlp"),
        ("WEBUI_MAX_UPLOAD_MB", "-3"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        from_env({name: value})


def test_factory_reads_the_environment(monkeypatch):
    monkeypatch.setenv("WEBUI_MLP_MODEL", "other_mlp")
    app = create_app()
    assert app.config["MODELS"]["mlp"] == "other_mlp"


def test_factory_takes_a_test_config_over_the_defaults(monkeypatch):
    monkeypatch.setenv("WEBUI_MLP_MODEL", "from_env")
    app = create_app({"TESTING": True, "MAX_UPLOAD_MB": 1})
    assert app.config["MODELS"]["mlp"] == DEFAULTS["MLP_MODEL"]
    assert app.config["MAX_IMAGE_BYTES"] == MIB
    assert app.testing
