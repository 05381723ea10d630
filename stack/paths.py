"""Where the stack's files are: configuration, the default work dir, model store and key file."""

from __future__ import annotations

from pathlib import Path

from tsclient.keys import KEY_FILE_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = REPO_ROOT / "config" / "config.properties"
LOG_CONFIG = REPO_ROOT / "config" / "log4j2.xml"
GUNICORN_CONFIG = REPO_ROOT / "config" / "gunicorn.conf.py"
DEFAULT_WORK_DIR = REPO_ROOT / "run" / "torchserve"
DEFAULT_MODEL_STORE = REPO_ROOT / "model_store"
DEFAULT_KEY_FILE = DEFAULT_WORK_DIR / KEY_FILE_NAME
NGINX_TEMPLATE = REPO_ROOT / "config" / "nginx.conf.template"
DEFAULT_NGINX_DIR = REPO_ROOT / "run" / "nginx"
