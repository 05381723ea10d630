"""The Kubernetes manifests, offline: schemas, rendered overlays, names, ports and labels."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from recognition.catalog import MODEL_NAMES as MODELS
from stack.properties import read_properties, resolve_config
from tests.deploy.crd_schemas import validate_custom_resource
from tests.deploy.manifests import (
    K8S,
    OVERLAYS,
    by_kind,
    container,
    container_ports,
    containers,
    env_of,
    load_documents,
    pod_labels,
    properties_port,
    render_overlay,
    resource_files,
    selects,
    walk,
)
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.unit

# The oldest Kubernetes these manifests claim (native HPA v2 behavior, PSA labels) and the newest
# kubernetes-validate knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
PROPS = read_properties((REPO_ROOT / "config" / "config.properties").read_text(encoding="utf-8"))
TS_PORTS = {
    "inference": properties_port(PROPS, "inference_address"),
    "management": properties_port(PROPS, "management_address"),
    "metrics": properties_port(PROPS, "metrics_address"),
}
PROXY_TEMPLATE = (K8S / "base" / "auth-proxy.conf.template").read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(overlay name, its rendered resources)."""
    return request.param, render_overlay(request.param, tmp_path_factory.mktemp("kustomize"))


def validate(resource: Mapping[str, Any], version: str) -> None:
    """Schema-validate one resource: Kubernetes' own schema, or ours for a custom resource."""
    try:
        kubernetes_validate.validate(dict(resource), version, strict=True)
    except kubernetes_validate.utils.SchemaNotFoundError:
        validate_custom_resource(resource)


# ---------------------------------------------------------------------------------------------
# Every file, as committed
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", resource_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_file_is_valid(path: Path, version: str) -> None:
    """Each resource file under deploy/ passes strict schema validation, without kustomize."""
    documents = load_documents(path)
    assert documents, f"{path} holds no resource"
    for resource in documents:
        validate(resource, version)


def test_strict_validation_rejects_a_misspelt_field() -> None:
    """The validator used above is strict: an unknown field fails (so the checks can fail)."""
    deployment = load_documents(K8S / "base" / "webui-deployment.yaml")[0]
    broken = yaml.safe_load(yaml.safe_dump(deployment).replace("readinessProbe", "readynessProbe"))
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


def test_every_base_resource_is_listed_in_the_kustomization() -> None:
    """A manifest left out of kustomization.yaml would silently never be applied."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in (K8S / "base").glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == on_disk


def test_generator_sources_exist() -> None:
    """Every file the base's generators read is in the repository (tokens.env is made)."""
    base = K8S / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (base / entry.split("=", 1)[-1]).resolve().is_file(), entry
    assert [g["envs"] for g in kustomization["secretGenerator"]] == [["tokens.env"]]
    assert "tokens.env" in (base / ".gitignore").read_text().split()


# ---------------------------------------------------------------------------------------------
# Rendered overlays
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_overlays_are_valid(rendered: Any, version: str) -> None:
    """Everything an overlay renders passes strict validation against the Kubernetes schemas."""
    _, resources = rendered
    kinds = sorted({r["kind"] for r in resources})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Namespace",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ]
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_config_map_is_config_properties_unchanged(rendered: Any) -> None:
    """One copy of the TorchServe configuration: the ConfigMap holds the repository's file."""
    _, resources = rendered
    (config_map,) = [
        r for r in by_kind(resources, "ConfigMap").values() if "config.properties" in r["data"]
    ]
    expected = (REPO_ROOT / "config" / "config.properties").read_text(encoding="utf-8")
    assert config_map["data"]["config.properties"] == expected


def test_references_resolve(rendered: Any) -> None:
    """Every ConfigMap, Secret (and Secret key) a Deployment uses is rendered with that name."""
    _, resources = rendered
    config_maps = by_kind(resources, "ConfigMap")
    secrets = by_kind(resources, "Secret")
    for deployment in by_kind(resources, "Deployment").values():
        for node in walk(deployment["spec"]["template"]):
            if not isinstance(node, Mapping):
                continue
            if "configMap" in node:
                assert node["configMap"]["name"] in config_maps
            if "secretKeyRef" in node:
                ref = node["secretKeyRef"]
                assert ref["name"] in secrets, ref
                assert ref["key"] in secrets[ref["name"]]["data"], ref
        for volume in deployment["spec"]["template"]["spec"]["volumes"]:
            if "configMap" in volume:
                data = config_maps[volume["configMap"]["name"]]["data"]
                for c in containers(deployment):
                    for mount in c.get("volumeMounts", []):
                        if mount["name"] == volume["name"] and "subPath" in mount:
                            assert mount["subPath"] in data, mount


def test_services_select_one_deployment_and_their_ports_exist(rendered: Any) -> None:
    """Each Service selects exactly one Deployment's pods, on container ports they declare."""
    _, resources = rendered
    deployments = by_kind(resources, "Deployment")
    for service in by_kind(resources, "Service").values():
        selector = service["spec"]["selector"]
        matched = [d for d in deployments.values() if selects(selector, pod_labels(d))]
        assert len(matched) == 1, service["metadata"]["name"]
        ports = container_ports(matched[0])
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)


def test_deployment_selectors_match_their_pods(rendered: Any) -> None:
    """A Deployment's selector matches its own template, and no other Deployment's pods."""
    _, resources = rendered
    deployments = by_kind(resources, "Deployment")
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selects(selector, pod_labels(deployment)), name
        for other_name, other in deployments.items():
            if other_name != name:
                assert not selects(selector, pod_labels(other)), (name, other_name)


def test_torchserve_service_ports_are_those_of_make_run(rendered: Any) -> None:
    """In-cluster clients use config.properties' port numbers, on the Service."""
    _, resources = rendered
    service = by_kind(resources, "Service")["torchserve"]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == TS_PORTS


def test_the_auth_proxy_forwards_to_the_configured_ports(rendered: Any) -> None:
    """nginx listens on the sidecar's declared ports and forwards to config.properties' ports."""
    _, resources = rendered
    deployment = by_kind(resources, "Deployment")["torchserve"]
    proxy_ports = {
        p["name"]: p["containerPort"] for p in container(deployment, "auth-proxy")["ports"]
    }
    listens = [int(p) for p in re.findall(r"^\s*listen (\d+);", PROXY_TEMPLATE, re.MULTILINE)]
    assert sorted(listens) == sorted(proxy_ports.values())
    for api, port in TS_PORTS.items():
        upstream = re.search(
            rf"upstream torchserve_{api} \{{\s*server 127\.0\.0\.1:(\d+);", PROXY_TEMPLATE
        )
        assert upstream is not None and int(upstream.group(1)) == port, api


def test_torchserve_stays_on_loopback_without_its_own_token_check(rendered: Any) -> None:
    """TorchServe keeps config.properties' loopback addresses; the proxy is the only way in."""
    _, resources = rendered
    env = env_of(container(by_kind(resources, "Deployment")["torchserve"], "torchserve"))
    for api, port in TS_PORTS.items():
        assert env[f"TS_{api.upper()}_ADDRESS"]["value"] == f"http://127.0.0.1:{port}"
    assert env["TS_DISABLE_TOKEN_AUTHORIZATION"]["value"] == "true"
    assert "containerPort" not in str(
        container(by_kind(resources, "Deployment")["torchserve"], "torchserve")
    )


def test_proxy_and_webui_use_the_same_secret_keys(rendered: Any) -> None:
    """The keys the web UI sends are the keys the proxy checks, and the template uses them."""
    _, resources = rendered
    deployments = by_kind(resources, "Deployment")
    proxy = env_of(container(deployments["torchserve"], "auth-proxy"))
    webui = env_of(container(deployments["webui"], "webui"))
    for kind in ("inference", "management"):
        proxy_ref = proxy[f"TS_PROXY_{kind.upper()}_KEY"]["valueFrom"]["secretKeyRef"]
        webui_ref = webui[f"WEBUI_{kind.upper()}_KEY"]["valueFrom"]["secretKeyRef"]
        assert proxy_ref == webui_ref
        assert f'"Bearer ${{TS_PROXY_{kind.upper()}_KEY}}"' in PROXY_TEMPLATE
    assert re.match(proxy["NGINX_ENVSUBST_FILTER"]["value"], "TS_PROXY_INFERENCE_KEY")


def test_webui_settings_exist_and_point_at_the_torchserve_service(rendered: Any) -> None:
    """Every WEBUI_* variable set is one webui/config.py reads; URLs name the Service's ports."""
    from webui.config import PARSERS, from_env

    _, resources = rendered
    webui = container(by_kind(resources, "Deployment")["webui"], "webui")
    env = env_of(webui)
    for name in env:
        if name.startswith("WEBUI_"):
            assert name.removeprefix("WEBUI_") in PARSERS, name
    plain = {name: entry["value"] for name, entry in env.items() if "value" in entry}
    settings = from_env(plain)
    assert settings["INFERENCE_URL"] == f"http://torchserve:{TS_PORTS['inference']}"
    assert settings["MANAGEMENT_URL"] == f"http://torchserve:{TS_PORTS['management']}"
    assert settings["KEY_FILE"] is None
    # gunicorn on loopback, where the front door's image forwards (Dockerfile, webui-door);
    # the pod's "http" port is the front door's.
    assert plain["GUNICORN_BIND"] == "127.0.0.1:5000"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "--upstream 127.0.0.1:5000" in dockerfile
    door_port = re.search(r"FROM nginxinc\S+ AS webui-door\n(?:.*\n)*?EXPOSE (\d+)", dockerfile)
    assert door_port is not None
    deployment = by_kind(resources, "Deployment")["webui"]
    assert container(deployment, "front-door")["ports"][0]["containerPort"] == int(door_port[1])
    assert container_ports(deployment)["http"] == int(door_port[1])


def test_probes_use_declared_ports_and_the_health_script(rendered: Any) -> None:
    """HTTP probes name declared ports; TorchServe's probes run scripts/healthcheck.py."""
    _, resources = rendered
    for deployment in by_kind(resources, "Deployment").values():
        ports = container_ports(deployment)
        for c in containers(deployment):
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                if probe and "httpGet" in probe:
                    assert probe["httpGet"]["port"] in ports, (c["name"], kind)
    torchserve = container(by_kind(resources, "Deployment")["torchserve"], "torchserve")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = torchserve[kind]["exec"]["command"]
        assert command == ["python", "-m", "scripts.healthcheck"], kind
    assert (REPO_ROOT / "scripts" / "healthcheck.py").is_file()


def test_the_healthcheck_checks_every_served_model() -> None:
    """The probe's default models are the ones TorchServe is started with."""
    from scripts.healthcheck import parse_args

    assert parse_args([]).models == list(MODELS)


def test_the_autoscaler_targets_the_torchserve_deployment(rendered: Any) -> None:
    """HPA and PodDisruptionBudget point at TorchServe, on the adapter's metric name."""
    _, resources = rendered
    hpa = by_kind(resources, "HorizontalPodAutoscaler")["torchserve"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "torchserve")
    assert target["name"] in by_kind(resources, "Deployment")
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pods_metrics = [
        m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"
    ]
    adapter = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    assert pods_metrics == [rule["name"]["as"] for rule in adapter["rules"]["custom"]]
    pdb = by_kind(resources, "PodDisruptionBudget")["torchserve"]
    deployment = by_kind(resources, "Deployment")["torchserve"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(deployment))


def test_network_policies_open_declared_ports_of_selected_pods(rendered: Any) -> None:
    """Each NetworkPolicy selects pods of one Deployment and names ports those pods declare."""
    _, resources = rendered
    deployments = by_kind(resources, "Deployment")
    for policy in by_kind(resources, "NetworkPolicy").values():
        selector = policy["spec"]["podSelector"]["matchLabels"]
        (deployment,) = [d for d in deployments.values() if selects(selector, pod_labels(d))]
        ports = container_ports(deployment)
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                assert port["port"] in ports, (policy["metadata"]["name"], port)


def test_pods_are_locked_down(rendered: Any) -> None:
    """Non-root, no privilege escalation, no capabilities, read-only root, seccomp, limits."""
    _, resources = rendered
    namespace = by_kind(resources, "Namespace")["mnist-serve"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for deployment in by_kind(resources, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            security = c["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, c["name"]
            assert security["readOnlyRootFilesystem"] is True, c["name"]
            assert security["capabilities"]["drop"] == ["ALL"], c["name"]
            assert security.get("runAsUser", pod["securityContext"]["runAsUser"]) != 0
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)


def test_gpu_overlay_requests_a_gpu_and_cpu_overlay_does_not(rendered: Any) -> None:
    """Only the gpu overlay asks for nvidia.com/gpu; the cpu overlay keeps TorchServe off GPUs."""
    overlay, resources = rendered
    torchserve = container(by_kind(resources, "Deployment")["torchserve"], "torchserve")
    limits = torchserve["resources"]["limits"]
    if overlay == "gpu":
        assert limits["nvidia.com/gpu"] == "1"
        assert torchserve["resources"]["requests"]["nvidia.com/gpu"] == "1"
    else:
        assert "nvidia.com/gpu" not in limits
        assert env_of(torchserve)["TS_NUMBER_OF_GPU"]["value"] == "0"


def test_images_are_pinned(rendered: Any) -> None:
    """Every container image carries an explicit tag, never latest."""
    _, resources = rendered
    for deployment in by_kind(resources, "Deployment").values():
        for c in containers(deployment):
            name, _, tag = c["image"].rpartition(":")
            assert name and tag and tag != "latest", c["image"]


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def test_new_tokens_makes_keys_the_proxy_accepts(tmp_path: Path) -> None:
    """new-tokens.sh writes two distinct keys that pass the proxy's start-up check."""
    tokens = tmp_path / "tokens.env"
    subprocess.run(["sh", str(K8S / "new-tokens.sh"), str(tokens)], check=True, capture_output=True)
    keys = dict(
        line.split("=", 1) for line in tokens.read_text().splitlines() if not line.startswith("#")
    )
    assert set(keys) == {"inference-key", "management-key"}
    assert keys["inference-key"] != keys["management-key"]
    assert oct(tokens.stat().st_mode & 0o777) == "0o600"
    env = {
        "PATH": "/usr/bin:/bin",
        "TS_PROXY_INFERENCE_KEY": keys["inference-key"],
        "TS_PROXY_MANAGEMENT_KEY": keys["management-key"],
    }
    check = K8S / "base" / "auth-proxy-check-keys.sh"
    result = subprocess.run(
        ["sh", str(check), "echo", "started"], env=env, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "started\n")


def test_new_tokens_never_overwrites_without_rotate(tmp_path: Path) -> None:
    """A second run keeps the keys unless --rotate is given."""
    tokens = tmp_path / "tokens.env"
    script = str(K8S / "new-tokens.sh")
    subprocess.run(["sh", script, str(tokens)], check=True, capture_output=True)
    first = tokens.read_text()
    again = subprocess.run(["sh", script, str(tokens)], capture_output=True, check=False)
    assert again.returncode == 1 and tokens.read_text() == first
    subprocess.run(["sh", script, "--rotate", str(tokens)], check=True, capture_output=True)
    assert tokens.read_text().splitlines()[1:] != first.splitlines()[1:]


@pytest.mark.parametrize(
    "inference_key",
    ["", "short", "x" * 30 + '"; return 200; #', "x" * 30 + " space"],
    ids=["empty", "short", "quote", "space"],
)
def test_the_proxy_refuses_to_start_with_a_bad_key(inference_key: str) -> None:
    """An empty, short or injecting key stops the sidecar before nginx would accept it."""
    env = {
        "PATH": "/usr/bin:/bin",
        "TS_PROXY_INFERENCE_KEY": inference_key,
        "TS_PROXY_MANAGEMENT_KEY": "m" * 43,
    }
    check = K8S / "base" / "auth-proxy-check-keys.sh"
    result = subprocess.run(
        ["sh", str(check), "echo", "started"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "TS_PROXY_INFERENCE_KEY" in result.stderr


def test_pod_environment_changes_the_torchserve_config_as_intended(rendered: Any) -> None:
    """The TS_* variables of the pod are keys scripts/torchserve_ctl.py really overrides."""

    overlay, resources = rendered
    torchserve = container(by_kind(resources, "Deployment")["torchserve"], "torchserve")
    env = {name: entry["value"] for name, entry in env_of(torchserve).items() if "value" in entry}
    config = resolve_config(PROPS, env)
    for name, value in env.items():
        if name.startswith("TS_"):
            # An unknown key would be dropped by env_overrides and never reach TorchServe.
            assert config.get(name.removeprefix("TS_").lower()) == value, name
    assert config["disable_token_authorization"] == "true"
    assert all(config[f"{api}_address"].startswith("http://127.0.0.1:") for api in TS_PORTS)
    if overlay == "cpu":
        assert config["number_of_gpu"] == "0"
