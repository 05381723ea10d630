"""Helpers for the deployment tests: load and render the manifests offline, index them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
KSERVE = DEPLOY / "kserve"
OVERLAYS = ("cpu", "gpu")
# Files in deploy/ that are not Kubernetes resources.
NOT_RESOURCES = {"kustomization.yaml", "prometheus-adapter-values.yaml"}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of one file (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def resource_files() -> list[Path]:
    """Every YAML file under deploy/ that holds Kubernetes resources (overlay patches excluded)."""
    files = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if path.name in NOT_RESOURCES or "overlays" in path.parts:
            continue
        files.append(path)
    return files


def kubectl() -> str:
    """The kubectl binary (its built-in kustomize renders the overlays); skips when absent."""
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl not installed: its built-in kustomize renders the overlays")
    return found


def render_overlay(overlay: str, workspace: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` output of one overlay, rendered in a copy of deploy/ and config/.

    The copy gets its own tokens.env from deploy/k8s/new-tokens.sh, so rendering needs no
    keys of the developer's and writes nothing into the repository.
    """
    tree = workspace / overlay
    shutil.copytree(DEPLOY, tree / "deploy", ignore=shutil.ignore_patterns("tokens.env"))
    (tree / "config").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "config" / "config.properties", tree / "config")
    tokens = tree / "deploy" / "k8s" / "base" / "tokens.env"
    subprocess.run(["sh", str(K8S / "new-tokens.sh"), str(tokens)], check=True, capture_output=True)
    result = subprocess.run(
        [
            kubectl(),
            "kustomize",
            "--load-restrictor",
            "LoadRestrictionsNone",
            str(tree / "deploy" / "k8s" / "overlays" / overlay),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(resources: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Mapping[str, Any]]:
    """Resources of one kind by name."""
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def containers(workload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers of a Deployment's pod template."""
    return workload["spec"]["template"]["spec"]["containers"]


def container(workload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """One container of a Deployment by name."""
    return next(c for c in containers(workload) if c["name"] == name)


def container_ports(workload: Mapping[str, Any]) -> dict[str, int]:
    """Named container ports of every container in a Deployment's pod template."""
    return {
        port["name"]: port["containerPort"]
        for c in containers(workload)
        for port in c.get("ports", [])
        if "name" in port
    }


def env_of(container_spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A container's env entries by variable name."""
    return {entry["name"]: entry for entry in container_spec.get("env", [])}


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True when every label of a (matchLabels-style) selector is on `labels`."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    """The pod template labels of a Deployment."""
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def walk(node: Any) -> Iterator[Any]:
    """Every mapping and list nested in a YAML tree, depth first."""
    yield node
    if isinstance(node, Mapping):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def properties_port(props: Mapping[str, str], key: str) -> int:
    """The port of an address in config.properties (http://host:port)."""
    return int(props[key].rsplit(":", 1)[1])
