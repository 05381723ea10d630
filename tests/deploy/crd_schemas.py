"""Structural schemas for the custom resources kubernetes-validate has no schema for.

They cover the fields these manifests use (unknown fields are errors, as in strict mode), after
the CRDs of KServe 0.15 (InferenceService v1beta1, ServingRuntime v1alpha1) and the Prometheus
Operator (ServiceMonitor v1). Containers inside a ServingRuntime are checked against the real
Kubernetes Container schema by validating them as a Pod's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import kubernetes_validate

K8S_VERSION = "1.29.0"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        "namespace": {"type": "string", "pattern": DNS_LABEL},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def resource(api_version: str, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A schema for one custom resource kind with the given spec schema."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


PROTOCOLS = ["v1", "v2", "grpc-v2"]

INFERENCE_SERVICE = resource(
    "serving.kserve.io/v1beta1",
    "InferenceService",
    {
        "type": "object",
        "required": ["predictor"],
        "properties": {
            "predictor": {
                "type": "object",
                "required": ["model"],
                "properties": {
                    "minReplicas": {"type": "integer", "minimum": 0},
                    "maxReplicas": {"type": "integer", "minimum": 1},
                    "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
                    "scaleTarget": {"type": "integer", "minimum": 1},
                    "model": {
                        "type": "object",
                        "required": ["modelFormat", "storageUri"],
                        "properties": {
                            "modelFormat": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                },
                                "additionalProperties": False,
                            },
                            "runtime": {"type": "string", "pattern": DNS_LABEL},
                            "protocolVersion": {"enum": PROTOCOLS},
                            "storageUri": {
                                "type": "string",
                                "pattern": r"^(s3|gs|pvc|https?|hdfs|webhdfs|oci|hf)://\S+$",
                            },
                        },
                        "additionalProperties": False,
                    },
                },
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    },
)

SERVING_RUNTIME = resource(
    "serving.kserve.io/v1alpha1",
    "ServingRuntime",
    {
        "type": "object",
        "required": ["supportedModelFormats", "containers"],
        "properties": {
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "supportedModelFormats": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "autoSelect": {"type": "boolean"},
                        "priority": {"type": "integer", "minimum": 1},
                    },
                    "additionalProperties": False,
                },
            },
            "protocolVersions": {"type": "array", "items": {"enum": PROTOCOLS}},
            # Checked against the Kubernetes Container schema in validate_custom_resource.
            "containers": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        },
        "additionalProperties": False,
    },
)

SERVICE_MONITOR = resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "properties": {
            "selector": {
                "type": "object",
                "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                },
                "additionalProperties": False,
            },
            "namespaceSelector": {
                "type": "object",
                "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                "additionalProperties": False,
            },
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["port"],
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": {"type": "string", "pattern": r"^\d+[smh]$"},
                        "scrapeTimeout": {"type": "string", "pattern": r"^\d+[smh]$"},
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
)

SCHEMAS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): INFERENCE_SERVICE,
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): SERVING_RUNTIME,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
}


class UnknownKindError(LookupError):
    """A resource kind with neither a Kubernetes schema nor one of ours."""


def validate_custom_resource(resource_: Mapping[str, Any]) -> None:
    """Validate a custom resource; raises jsonschema.ValidationError or UnknownKindError."""
    key = (resource_.get("apiVersion"), resource_.get("kind"))
    if key not in SCHEMAS:
        raise UnknownKindError(f"no schema for {key}: add one to tests/deploy/crd_schemas.py")
    jsonschema.validate(dict(resource_), SCHEMAS[key])
    if key[1] == "ServingRuntime":
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "runtime-check"},
            "spec": {"containers": resource_["spec"]["containers"]},
        }
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
