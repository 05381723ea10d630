"""mnist-serve web UI: a Flask app that sends each image to both TorchServe models and merges.

flask --app webui run                                  # development server on :5000
gunicorn -c config/gunicorn.conf.py "webui:create_app()"  # what `make run` serves
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from webui import api, config, ensemble, errors, pages, security, shedding, torchserve
from webui.payload import InMemoryRequest


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from WEBUI_* variables, or the given mapping on top of defaults."""
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    if test_config is None:
        app.config.from_mapping(config.from_env(os.environ))
    else:
        app.config.from_mapping(config.derive({**config.DEFAULTS, **test_config}))
    app.json.sort_keys = False

    _log_like_the_server()
    torchserve.init_app(app)
    ensemble.init_app(app)
    security.init_app(app)
    shedding.init_app(app)
    errors.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app


def _log_like_the_server() -> None:
    """Under gunicorn, send the package's log records to gunicorn's error log."""
    server = logging.getLogger("gunicorn.error")
    package = logging.getLogger(__name__)
    if server.handlers and not package.handlers:
        package.handlers = list(server.handlers)
        package.setLevel(server.level)
        package.propagate = False
