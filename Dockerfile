# syntax=docker/dockerfile:1
#
# mnist-serve images, one target per service:
#
#   docker build --target torchserve -t mnist-serve-torchserve:1.0.0 .
#   docker build --target webui -t mnist-serve-webui:1.0.0 .
#   docker build --target webui-door -t mnist-serve-webui-door:1.0.0 .
#
#   docker run --rm -p 8080-8082:8080-8082 mnist-serve-torchserve:1.0.0             # CPU workers
#   docker run --rm --gpus all -p 8080-8082:8080-8082 mnist-serve-torchserve:1.0.0  # GPU workers
#
#   # The web UI behind its nginx front door, sharing one network namespace (as in the pod):
#   docker run -d --name webui -p 8000:8000 -e GUNICORN_BIND=127.0.0.1:5000 mnist-serve-webui:1.0.0
#   docker run -d --name webui-door --network container:webui mnist-serve-webui-door:1.0.0
#
# Base image: the official python:3.11-slim-bookworm, pinned by tag: Debian 12 with Python 3.11,
# the platform `make run` is developed and tested on, so `pip install -r requirements.txt` gives
# the image exactly the pinned stack of the repository. CUDA needs no CUDA base image: the pinned
# torch wheel from PyPI carries its CUDA 13 runtime libraries (nvidia-* wheels), and with
# `--gpus all` the NVIDIA Container Toolkit mounts the host's driver and nvidia-smi; TorchServe
# then finds the GPUs and gives each worker one, else workers run on the CPU. The official
# pytorch/torchserve images ship Python 3.9 and an older torch, which cannot install these pins,
# and an nvidia/cuda runtime base would add a second copy of the CUDA libraries.
#
# Same files as `make run`: requirements.txt, scripts/build_archives.py (archives are built in
# the image), config/config.properties (read by stack/torchserve.py, with TS_* environment
# overrides), config/gunicorn.conf.py. Both services ship tsclient/, the one TorchServe client,
# and the leaf modules of recognition/ (the model list, the upload limit; no torch). The
# torchserve target runs the launcher stack/; the web UI needs only stack/paths.py (where the
# key file is) and stack/headers.py (its security headers). webui-door is nginx with
# config/nginx.conf.template rendered at build time by stack/nginx_render.py (the body limit
# from recognition/limits.py, the error pages' headers from stack/headers.py): the public entry
# point in front of gunicorn on 127.0.0.1:5000. docs/deployment.md has the details.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS python-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ---------------------------------------------------------------------------------------------
# The serving stack: every pin of requirements.txt above its "Tests and tooling" section.
FROM python-base AS serving-venv
COPY requirements.txt /tmp/requirements.txt
RUN sed '/^# Tests and tooling/,$d' /tmp/requirements.txt > /tmp/serving.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/serving.txt

# ---------------------------------------------------------------------------------------------
# The model archives, built by the script `make archives` runs, from the committed weights.
FROM serving-venv AS archives
WORKDIR /src
COPY pyproject.toml ./
COPY scripts/__init__.py scripts/build_archives.py scripts/
COPY handlers/ handlers/
COPY recognition/ recognition/
COPY config/models/ config/models/
COPY weights/mnist_mlp.pt weights/mnist_cnn.pt weights/
RUN /opt/venv/bin/python -m scripts.build_archives --model-store /src/model_store

# ---------------------------------------------------------------------------------------------
# Web UI dependencies only: flask, gunicorn and requests at their pinned versions.
FROM python-base AS webui-venv
COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^(flask|gunicorn|requests)==' /tmp/requirements.txt > /tmp/webui.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/webui.txt

# ---------------------------------------------------------------------------------------------
# Runtime layer shared by both services: tini as PID 1 (signals reach the app, zombies are
# reaped) and an unprivileged user.
FROM python-base AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS torchserve
# Java 17 for TorchServe's frontend. Debian's package versions are not pinned: the pinned
# bookworm tag fixes the release, and security updates must go in at rebuild. (Slim images
# lack the man directories the JRE's postinst links into.)
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
COPY --from=serving-venv /opt/venv /opt/venv
COPY scripts/__init__.py scripts/torchserve_foreground.py scripts/healthcheck.py scripts/
COPY stack/ stack/
COPY tsclient/ tsclient/
COPY recognition/__init__.py recognition/catalog.py recognition/constants.py recognition/limits.py \
    recognition/header.py recognition/
COPY config/config.properties config/log4j2.xml config/
COPY --from=archives /src/model_store/ model_store/
# run/ holds TorchServe's work dir (logs, key_file.json, its TMPDIR): the one writable place.
RUN mkdir -p run && chown app:app run
# In a container, listen on every interface: `docker run -p` decides what is published.
# Kubernetes sets these back to loopback behind its auth proxy (deploy/k8s).
ENV TS_INFERENCE_ADDRESS=http://0.0.0.0:8080 \
    TS_MANAGEMENT_ADDRESS=http://0.0.0.0:8081 \
    TS_METRICS_ADDRESS=http://0.0.0.0:8082 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
EXPOSE 8080 8081 8082
# Healthy when both models have a READY worker (TorchServe's /ping is not enough).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "scripts.healthcheck"]
CMD ["python", "-m", "scripts.torchserve_foreground"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS webui
COPY --from=webui-venv /opt/venv /opt/venv
COPY webui/ webui/
COPY tsclient/ tsclient/
COPY stack/__init__.py stack/headers.py stack/paths.py stack/
COPY recognition/__init__.py recognition/catalog.py recognition/constants.py recognition/limits.py \
    recognition/header.py recognition/summary.py recognition/voters.py recognition/
COPY config/gunicorn.conf.py config/ensemble.json config/
ENV GUNICORN_BIND=0.0.0.0:5000 \
    GUNICORN_ACCESS_LOG=- \
    WEBUI_INFERENCE_URL=http://torchserve:8080 \
    WEBUI_MANAGEMENT_URL=http://torchserve:8081
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/', timeout=4)"]
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "webui:create_app()"]

# ---------------------------------------------------------------------------------------------
# The front door's nginx.conf, rendered by the same code `make run` uses.
FROM webui-venv AS webui-door-config
WORKDIR /src
COPY stack/ stack/
COPY tsclient/ tsclient/
COPY recognition/__init__.py recognition/catalog.py recognition/limits.py recognition/
COPY config/nginx.conf.template config/
RUN /opt/venv/bin/python -m stack.nginx_render --listen 0.0.0.0:8000 \
        --upstream 127.0.0.1:5000 --prefix /tmp > /src/nginx.conf

# ---------------------------------------------------------------------------------------------
# nginx in front of the web UI (the same pinned unprivileged image as the auth-proxy sidecar):
# buffers whole requests, short client deadlines, per-client limits, JSON error pages. Runs
# beside the webui container in one network namespace (a pod, or --network container:webui).
FROM nginxinc/nginx-unprivileged:1.28.0-alpine AS webui-door
COPY --from=webui-door-config /src/nginx.conf /etc/nginx/nginx.conf
USER 101:101
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/"]
CMD ["nginx", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"]
