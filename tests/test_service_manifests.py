"""The service's Kubernetes resources (manifests/base/service-*.yaml) agree with the code and
the benchmark: probes on real routes, the config loads with the service's loader, a
read-only pod with emptyDirs where it writes, selectors that match, memory from the figures.
The schema validation of every rendered resource is tests/test_manifests.py's."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from service.config import parse_service_config
from service.spec import template
from tests.test_manifests import (
    DUMMY_SECRETS,
    KUSTOMIZATIONS,
    REPO,
    _configmaps,
    rendered,
)

BENCH = REPO / "docs" / "service-bench.json"


def _by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs
            if d.get("metadata", {}).get("name") == "addlink-service"}


def _mebibytes(quantity: str) -> float:
    value, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(value) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_service_resources_match_the_code(kustomization):
    docs = rendered(kustomization)
    res = _by_kind(docs)
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= set(res)
    dep = res["Deployment"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    for selector in (dep["spec"]["selector"]["matchLabels"], res["Service"]["spec"]["selector"],
                     res["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
                     res["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"]):
        assert selector.items() <= labels.items(), selector
    (c,) = pod["spec"]["containers"]
    assert c["command"] == ["gunicorn"]
    assert c["args"] == ["-c", "/app/service/gunicorn_conf.py", "service.app:create_app()"]
    assert (REPO / "service" / "gunicorn_conf.py").is_file()
    routes = set(template()["paths"])
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" in routes
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    env = {e["name"]: e for e in c["env"]}
    # security: non-root, read-only root, models read-only, writes only to emptyDirs
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    assert volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]["readOnly"] is True
    prom = mounts[env["PROMETHEUS_MULTIPROC_DIR"]["value"]]
    assert "emptyDir" in volumes[prom["name"]] and not prom.get("readOnly")
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    # the config the pod reads loads with the service's own loader; models on the volume
    config_path = env["ADDLINK_CONFIG"]["value"]
    assert mounts[config_path.rsplit("/", 1)[0]]["readOnly"] is True
    maps = _configmaps(docs)
    cfg = parse_service_config(yaml.safe_load(maps["addlink-config"]["config.yaml"]),
                               config_path, {**maps["addlink-env"], **DUMMY_SECRETS})
    assert all(w.model.startswith("/models/") for w in cfg.wikis.values())
    assert cfg.monitor_wiki.name in cfg.wikis
    # network: in on the service port only
    (rule,) = res["NetworkPolicy"]["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [8000]
    assert res["Service"]["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]
    # at most one pod down at a time, and more than one pod to keep serving
    assert res["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert dep["spec"]["replicas"] >= 2


def test_memory_covers_the_measured_workers():
    """Limit >= every worker's measured peak RSS (all shared models open) plus the master."""
    bench = json.loads(BENCH.read_text())
    dep = _by_kind(rendered(KUSTOMIZATIONS[0]))["Deployment"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    workers = int({e["name"]: e for e in c["env"]}["GUNICORN_WORKERS"]["value"])
    peak = max(w["peak_rss_mb"] for w in bench["worker_rss"].values())
    limit = _mebibytes(c["resources"]["limits"]["memory"])
    assert limit >= workers * peak + 60, (limit, workers, peak)
    assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]
    assert float(c["resources"]["limits"]["cpu"].rstrip("m")) / 1000 >= workers
