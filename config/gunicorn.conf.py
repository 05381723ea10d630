"""Gunicorn settings for the web UI under `make run`; environment variables override each one.

GUNICORN_BIND        address to listen on                       127.0.0.1:5000
GUNICORN_WORKERS     processes (one per core of the 2-core target)          2
GUNICORN_THREADS     threads per process (requests wait on TorchServe)      8
GUNICORN_TIMEOUT     seconds before a silent worker is restarted           30
GUNICORN_ACCESS_LOG  "-" for an access log on stdout, a path, or unset (off)
GUNICORN_LOG_LEVEL   debug, info, warning, error                         info

.venv/bin/gunicorn -c config/gunicorn.conf.py "webui:create_app()"
"""

import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads, not more processes: a request spends its time waiting for TorchServe's answers.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "mnist-serve-webui"
# Heartbeat files in memory where there is a tmpfs (containers often have a disk-backed /tmp).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Request limits above the front door's (config/nginx.conf.template: a request line or header
# longer than 4 KiB, or headers over 17 KiB in all, are refused by nginx with JSON), so
# gunicorn's own HTML 400/431 pages are never what a client behind nginx sees.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 8192
# No control socket: its default path is shared by every gunicorn of the user (tests run several).
control_socket_disable = True


def on_starting(server):
    """One directory of costly-image lanes for all workers (webui/shedding.py), made before
    they fork so each inherits WEBUI_LANE_DIR."""
    if not os.environ.get("WEBUI_LANE_DIR"):
        os.environ["WEBUI_LANE_DIR"] = tempfile.mkdtemp(prefix="mnist-serve-lanes-")
        server.lane_dir_made = os.environ["WEBUI_LANE_DIR"]


def on_exit(server):
    """Remove the lane directory this master made."""
    made = getattr(server, "lane_dir_made", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
