"""manifests/ checked offline: schema validity, deadlines, security, config, CLI and dashboard.

- Every Kubernetes resource file under manifests/, and the rendered base and overlays
  (`kubectl kustomize`, which runs offline), validate with kubernetes-validate --strict
  against Kubernetes 1.31.
- The CronJobs and the backfill Job agree with the runner: their flags parse with the
  runner's own argparse, their config loads with runner.config, every secret the config
  names comes from the Secret, the deadlines leave --max-runtime room to finish.
- The Grafana dashboard (Prometheus) queries only metrics that runner/metric_names.py
  declares, counters only through rate()/increase().
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "manifests"
K8S_VERSION = "1.31.0"
RUNNER_CONFIG = MANIFESTS / "base" / "config.yaml"  # a runner config, not a resource
DASHBOARD = MANIFESTS / "grafana" / "addlink-dashboard.json"
KUSTOMIZATIONS = [MANIFESTS / "base", MANIFESTS / "overlays" / "staging",
                  MANIFESTS / "overlays" / "production"]
BACKFILL = MANIFESTS / "backfill" / "job-backfill.yaml"
# Capacity measurement the pod resources are derived from (benchmarks/capacity.py format).
MEASUREMENT = REPO / "docs" / "capacity-input.json"
# activeDeadlineSeconds must leave this much after --max-runtime: pod start, the batch in
# flight, the final commit and event flush.
DEADLINE_MARGIN = 300
SECRET_NAME = "addlink-secrets"
DUMMY_SECRETS = {"ADDLINK_DB_PASSWORD": "x", "ADDLINK_BOT_PASSWORD": "x",
                 "ADDLINK_EVENTGATE_TOKEN": "x"}


def _load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resource_files() -> list[Path]:
    files = sorted(MANIFESTS.rglob("*.yaml")) + sorted(MANIFESTS.rglob("*.yml"))
    not_k8s = (MANIFESTS / "prometheus", MANIFESTS / "statsd-exporter")  # their own tests
    return [f for f in files if f.name not in ("kustomization.yaml", "kustomization.yml")
            and f != RUNNER_CONFIG and f.parent not in not_k8s]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if not path:
        pytest.fail("kubectl is needed to render the kustomizations (`kubectl kustomize` "
                    "works offline); install it (Debian package kubectl) or put it on PATH")
    return path


_rendered: dict[Path, list[dict]] = {}


def rendered(kustomization: Path) -> list[dict]:
    if kustomization not in _rendered:
        result = subprocess.run([kubectl(), "kustomize", str(kustomization)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"kubectl kustomize {kustomization}:\n{result.stderr}"
        _rendered[kustomization] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return _rendered[kustomization]


def validate(doc: dict, where: str) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        pytest.fail(f"{where}: {doc['kind']}: {path}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        pytest.fail(f"{where}: {e.message}")


# --- schema validity ----------------------------------------------------------------------

@pytest.mark.parametrize("path", resource_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_resource_file_validates_strictly(path):
    docs = _load_yaml_docs(path)
    assert docs, f"{path}: empty"
    for doc in docs:
        assert "apiVersion" in doc and "kind" in doc, (
            f"{path}: not a full resource (patches belong inline in a kustomization)")
        validate(doc, str(path.relative_to(REPO)))


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_rendered_kustomization_validates_strictly(kustomization):
    docs = rendered(kustomization)
    kinds = {d["kind"] for d in docs}
    assert {"CronJob", "ConfigMap", "PersistentVolumeClaim", "ServiceAccount"} <= kinds, kinds
    for doc in docs:
        validate(doc, f"kubectl kustomize {kustomization.relative_to(REPO)}")


def test_overlays_set_namespace_and_a_real_image():
    for overlay in KUSTOMIZATIONS[1:]:
        for doc in rendered(overlay):
            assert doc["metadata"].get("namespace"), f"{overlay.name}: {doc['kind']} unplaced"
            for pod in pod_specs([doc]):
                for c in pod["containers"]:
                    assert "/" in c["image"] and ":" in c["image"], c["image"]
                    if overlay.name == "production":
                        assert not c["image"].endswith(":latest"), c["image"]


# --- workloads ----------------------------------------------------------------------------

def workloads() -> list[tuple[str, dict]]:
    """(where, resource) for every CronJob and Job: rendered base and overlays, backfill."""
    out = []
    for k in KUSTOMIZATIONS:
        out += [(f"{k.name}/{d['metadata']['name']}", d) for d in rendered(k)
                if d["kind"] in ("CronJob", "Job")]
    out += [(f"backfill/{d['metadata'].get('generateName')}", d)
            for d in _load_yaml_docs(BACKFILL)]
    return out


def job_spec(resource: dict) -> dict:
    return resource["spec"]["jobTemplate"]["spec"] if resource["kind"] == "CronJob" \
        else resource["spec"]


def pod_specs(docs: list[dict]) -> list[dict]:
    specs = []
    for d in docs:
        if d["kind"] in ("CronJob", "Job"):
            specs.append(job_spec(d)["template"]["spec"])
    return specs


def flag_values(args: list[str]) -> dict[str, list[str]]:
    """``--flag=value`` arguments, by flag (the manifests use only this form)."""
    values: dict[str, list[str]] = {}
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            flag, _, value = arg.partition("=")
            values.setdefault(flag, []).append(value)
    return values


def container(resource: dict) -> dict:
    containers = job_spec(resource)["template"]["spec"]["containers"]
    assert len(containers) == 1, "one runner container per pod"
    return containers[0]


def cron_fire_times(expr: str, days: int = 8) -> list[datetime]:
    """Minutes matched by a 5-field cron expression over ``days`` days (numbers, *, a-b, /n, ,)."""
    fields = expr.split()
    assert len(fields) == 5, f"cron expression {expr!r}: want 5 fields"
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]

    def allowed(field: str, lo: int, hi: int) -> set[int]:
        out: set[int] = set()
        for part in field.split(","):
            base, _, step = part.partition("/")
            if base == "*":
                a, b = lo, hi
            elif "-" in base:
                a, b = (int(x) for x in base.split("-"))
            else:
                a = b = int(base)
                if step:
                    b = hi
            out.update(range(a, b + 1, int(step or 1)))
        return out

    sets = [allowed(f, lo, hi) for f, (lo, hi) in zip(fields, ranges, strict=True)]
    start = datetime(2025, 1, 6)  # a Monday
    times = []
    for minute in range(days * 24 * 60):
        t = start + timedelta(minutes=minute)
        if (t.minute in sets[0] and t.hour in sets[1] and t.day in sets[2]
                and t.month in sets[3] and (t.weekday() + 1) % 7 in sets[4]):
            times.append(t)
    return times


def min_interval_seconds(expr: str) -> float:
    times = cron_fire_times(expr)
    assert len(times) >= 2, f"{expr!r} fires less than twice in 8 days"
    return min((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))


def test_cron_interval_helper():
    assert min_interval_seconds("17 * * * *") == 3600
    assert min_interval_seconds("17 */6 * * *") == 6 * 3600
    assert min_interval_seconds("0 1,2 * * *") == 3600
    assert min_interval_seconds("*/15 * * * *") == 900


def test_cronjobs_forbid_overlap_and_finish_before_the_next_run():
    cronjobs = [(w, r) for w, r in workloads() if r["kind"] == "CronJob"]
    assert cronjobs
    for where, cj in cronjobs:
        spec = cj["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", where
        assert spec.get("successfulJobsHistoryLimit") is not None, where
        assert spec.get("failedJobsHistoryLimit") is not None, where
        interval = min_interval_seconds(spec["schedule"])
        assert 0 < spec["startingDeadlineSeconds"] < interval, where
        jspec = job_spec(cj)
        assert jspec.get("backoffLimit") is not None, where
        max_runtime = float(flag_values(container(cj)["args"])["--max-runtime"][0])
        deadline = jspec["activeDeadlineSeconds"]
        assert deadline >= max_runtime + DEADLINE_MARGIN, (
            f"{where}: activeDeadlineSeconds {deadline} < --max-runtime {max_runtime:.0f} + "
            f"{DEADLINE_MARGIN}: the pod would be killed before it commits")
        assert deadline <= interval, (
            f"{where}: activeDeadlineSeconds {deadline} > schedule interval {interval:.0f}: "
            "with Forbid, a slow run would make the next one be skipped")


def test_backfill_is_an_indexed_job_with_one_shard_per_pod():
    (job,) = _load_yaml_docs(BACKFILL)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    shards = flag_values(container(job)["args"])["--shard"]
    assert len(shards) == 1
    index, _, total = shards[0].partition("/")
    assert index == "$(JOB_COMPLETION_INDEX)", "each pod must take its own completion index"
    assert int(total) == spec["completions"] == spec["parallelism"], (
        "--shard .../N, completions and parallelism must all be the number of shards")
    max_runtime = float(flag_values(container(job)["args"])["--max-runtime"][0])
    assert spec["activeDeadlineSeconds"] >= max_runtime + DEADLINE_MARGIN
    assert "refresh" in container(job)["args"]


def test_arg_variables_are_declared_in_the_container_env():
    for where, resource in workloads():
        c = container(resource)
        declared = {e["name"] for e in c.get("env", [])}
        for arg in c.get("args", []) + c.get("command", []):
            for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                assert name in declared, (
                    f"{where}: $({name}) in args is not in the container's env list; "
                    "Kubernetes would pass it through literally")


def test_job_failure_policy_names_the_container_and_needs_never_restart():
    for where, resource in workloads():
        spec = job_spec(resource)
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never", where
        for rule in spec.get("podFailurePolicy", {}).get("rules", []):
            if "onExitCodes" in rule:
                assert rule["onExitCodes"]["containerName"] == container(resource)["name"]
                assert 0 not in rule["onExitCodes"]["values"]


def test_grace_period_is_above_the_signal_exit_bound_with_margin():
    """SIGTERM: the runner commits the finished pages, publishes a few seconds and exits
    within SIGNAL_EXIT_BOUND (measured in docs/reliability.md); the SIGKILL after the grace
    period must never come first, even on a loaded node (a margin of 3x at least)."""
    from runner.run import SIGNAL_EXIT_BOUND, STOP_GRACE, STOP_PUBLISH

    assert STOP_GRACE + STOP_PUBLISH < SIGNAL_EXIT_BOUND
    for where, resource in workloads():
        grace = job_spec(resource)["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        assert grace >= 3 * SIGNAL_EXIT_BOUND, (
            f"{where}: terminationGracePeriodSeconds {grace} leaves too little margin over "
            f"the runner's {SIGNAL_EXIT_BOUND:g} s exit bound after SIGTERM")
        assert grace < DEADLINE_MARGIN


def _dockerfile_uid() -> int:
    users = [ln.split()[1] for ln in (REPO / "Dockerfile").read_text().splitlines()
             if ln.startswith("USER ")]
    return int(users[-1].split(":")[0])


def test_security_context():
    uid = _dockerfile_uid()
    for where, resource in workloads():
        pod = job_spec(resource)["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] == uid, f"{where}: runAsUser differs from the image's USER"
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        c = container(resource)
        csc = c["securityContext"]
        assert csc["runAsNonRoot"] is True, where
        assert csc["readOnlyRootFilesystem"] is True, where
        assert csc["allowPrivilegeEscalation"] is False, where
        assert csc["capabilities"]["drop"] == ["ALL"], where
        assert not csc["capabilities"].get("add"), where
        assert csc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert not csc.get("privileged"), where


def test_volumes_models_read_only_tmp_writable_config_from_configmap():
    for where, resource in workloads():
        pod = job_spec(resource)["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in container(resource)["volumeMounts"]}
        tmp = mounts["/tmp"]
        assert "emptyDir" in volumes[tmp["name"]] and not tmp.get("readOnly"), where
        models = mounts["/models"]
        assert models.get("readOnly") is True, where
        pvc = volumes[models["name"]]["persistentVolumeClaim"]
        assert pvc.get("readOnly") is True, where
        config_path = flag_values(container(resource)["args"])["--config"][0]
        config_dir = str(Path(config_path).parent)
        config_volume = volumes[mounts[config_dir]["name"]]
        assert config_volume["configMap"]["name"] == "addlink-config", where
        assert mounts[config_dir].get("readOnly") is True, where


def _env_keys(node, path="") -> list[tuple[str, str]]:
    """(path, value) of every ``*_env`` key in a parsed config."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str) and k.endswith("_env"):
                out.append((f"{path}.{k}".lstrip("."), v))
            out += _env_keys(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _env_keys(v, f"{path}[{i}]")
    return out


def _configmaps(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}


def test_secrets_named_by_the_config_come_from_the_secret():
    secret_keys = {d["metadata"]["name"]: set(d["stringData"])
                   for d in _load_yaml_docs(MANIFESTS / "secret.example.yaml")}
    assert SECRET_NAME in secret_keys
    raw = yaml.safe_load(RUNNER_CONFIG.read_text())
    env_keys = _env_keys(raw)
    assert {p for p, _ in env_keys} >= {"store.password_env", "events.token_env",
                                        "defaults.source.bot_password_env"}, env_keys
    for where, resource in workloads():
        env = {e["name"]: e for e in container(resource).get("env", [])}
        for path, var in env_keys:
            assert var in env, f"{where}: {path} names {var}, which the pod does not set"
            ref = env[var].get("valueFrom", {}).get("secretKeyRef")
            assert ref, f"{where}: {var} ({path}) must come from a Secret, not a literal"
            assert ref["name"] == SECRET_NAME and ref["key"] in secret_keys[SECRET_NAME], ref
        for e in env.values():  # no literal secret slipped into plain env values
            if re.search(r"PASSWORD|TOKEN|SECRET", e["name"]):
                assert "valueFrom" in e, f"{where}: {e['name']} has a literal value"


def _runner_config_module():
    try:
        from runner import config
    except ImportError as e:  # pragma: no cover - the runner is a sibling package
        pytest.fail(f"runner.config does not import: {e}")
    return config


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_config_loads_with_the_runner_and_names_every_scheduled_wiki(kustomization):
    config = _runner_config_module()
    docs = rendered(kustomization)
    maps = _configmaps(docs)
    text = maps["addlink-config"]["config.yaml"]
    assert text == RUNNER_CONFIG.read_text(), "the ConfigMap is not base/config.yaml"
    env = {**maps["addlink-env"], **DUMMY_SECRETS}
    cfg = config.parse_config(yaml.safe_load(text), "addlink-config", env)
    for name, wiki in cfg.wikis.items():
        assert wiki.model == f"/models/{name}", f"{name}: model outside the models volume"
    assert cfg.store.type == "mysql" and cfg.lock.type == "zookeeper"
    assert cfg.events.type == "eventgate" and cfg.metrics.type == "pushgateway"
    scheduled: dict[str, str] = {}
    for cj in (d for d in docs if d["kind"] == "CronJob"):
        for wiki in flag_values(container(cj)["args"]).get("--wiki", []):
            assert wiki in cfg.wikis, f"{cj['metadata']['name']}: --wiki={wiki} not configured"
            assert wiki not in scheduled, (
                f"{wiki} is in two CronJobs ({scheduled[wiki]}, {cj['metadata']['name']}): "
                "their runs would collide on the wiki's lock (exit 3)")
            scheduled[wiki] = cj["metadata"]["name"]
            # The "no successful run for 2 intervals" alert reads this as a metric.
            assert cfg.wikis[wiki].schedule_interval == min_interval_seconds(
                cj["spec"]["schedule"]), f"{wiki}: schedule_interval is not its CronJob's"
        envfrom = [e["configMapRef"]["name"] for e in container(cj).get("envFrom", [])]
        assert envfrom == ["addlink-env"], envfrom
    assert set(scheduled) == set(cfg.wikis), (
        f"configured but in no CronJob: {sorted(set(cfg.wikis) - set(scheduled))}")
    (backfill,) = _load_yaml_docs(BACKFILL)
    for wiki in flag_values(container(backfill)["args"])["--wiki"]:
        assert wiki in cfg.wikis


def _runner_parser():
    """The runner's argparse parser, from runner/__main__.py."""
    path = REPO / "runner" / "__main__.py"
    assert path.is_file(), "runner/__main__.py is missing (the image's ENTRYPOINT module)"
    import argparse

    import runner.__main__ as cli
    for name in ("build_parser", "make_parser", "parser", "create_parser", "get_parser"):
        obj = getattr(cli, name, None)
        if isinstance(obj, argparse.ArgumentParser):
            return obj
        if callable(obj):
            made = obj()
            if isinstance(made, argparse.ArgumentParser):
                return made
    pytest.fail("runner/__main__.py exposes no parser factory (build_parser())")


def test_every_flag_in_the_manifests_is_accepted_by_the_runner():
    parser = _runner_parser()
    for where, resource in workloads():
        args = [a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in container(resource)["args"]]
        for arg in args:
            assert not arg.startswith("--") or "=" in arg, f"{where}: write {arg}=VALUE"
        try:
            parser.parse_args(args)
        except SystemExit as e:
            pytest.fail(f"{where}: the runner rejects {args} (exit {e.code})")


def test_resources_follow_the_measured_capacity():
    spec = importlib.util.spec_from_file_location("capacity", REPO / "benchmarks/capacity.py")
    capacity = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("capacity", capacity)
    spec.loader.exec_module(capacity)
    measurement = capacity.load_measurement(MEASUREMENT)
    for where, resource in workloads():
        c = container(resource)
        workers = int(flag_values(c["args"])["--workers"][0])
        want = capacity.pod_resources(measurement, workers)
        assert c["resources"] == want, (
            f"{where}: resources {c['resources']} differ from "
            f"benchmarks/capacity.py pod_resources(--workers={workers}) = {want}")


# --- dashboard ----------------------------------------------------------------------------
# Offline checks; tests/test_prometheus.py runs every panel's query against a real Prometheus.

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "sum", "max", "min", "avg", "count", "rate",
                "increase", "time", "histogram_quantile", "le", "topk", "bottomk", "clamp_min"}


def dashboard_panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers not in braces, strings or keywords."""
    bare = re.sub(r"\{[^{}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    return {w for w in re.findall(r"\b[a-z_][a-z0-9_]*\b", bare) if w not in PROMQL_WORDS}


def test_dashboard_queries_only_declared_metrics_of_the_declared_type():
    from runner import metric_names
    declared = {s.name: s for s in metric_names.PROMETHEUS.values()}
    used = set()
    for panel in dashboard_panels():
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            names = promql_metric_names(expr)
            assert names, f"{panel['title']}: no metric in {expr!r}"
            for name in names:
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                spec = declared.get(name) or declared.get(base)
                assert spec, f"{panel['title']}: {name} is not in runner/metric_names.py"
                if spec.kind == "counter":  # counters only through rate()/increase()
                    assert re.search(rf"(rate|increase)\({name}\b", expr), (panel["title"], expr)
                used.add(spec.name)
    assert {"addlink_pool_size", "addlink_pool_target", "addlink_outcomes_total",
            "addlink_run_duration_seconds", "addlink_errors_total", "addlink_events_pending",
            "addlink_events_dead_letters", "addlink_feedback_ratio"} <= used, used


def test_dashboard_wiki_variable_and_prometheus_datasource():
    assert promql_metric_names('sum by (wiki) (rate(addlink_outcomes_total{a="b"}[5m]))') == \
        {"addlink_outcomes_total"}
    dash = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["wiki"]["definition"] == "label_values(addlink_pool_size, wiki)"
    assert variables["wiki"]["multi"] and variables["wiki"]["allValue"] == ".+"
    titles = {p["title"] for p in dash["panels"]}
    assert {"Pool size and target per wiki", "Outcomes per minute", "Run duration", "Errors",
            "Events pending and dead-lettered", "Acceptance rate per model version"} <= titles
    for panel in dash["panels"]:
        for target in panel["targets"]:
            assert 'wiki=~"$wiki"' in target["expr"], (panel["title"], target["expr"])


# --- training Job -------------------------------------------------------------------------

TRAIN_JOB = MANIFESTS / "training" / "job-train.yaml"


def _train_commands(job: dict) -> list[list[str]]:
    """The ``python -m model ...`` command lines of the training script, variables expanded
    from the container's env as the shell would."""
    import shlex

    c = container(job)
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    script = "\n".join(c["args"])
    commands = []
    for line in script.splitlines():
        line = line.strip()
        if line.startswith("python -m model "):
            # "$@" holds one --dump per file DUMP's glob matches (the loop before it, run
            # by a real shell in the test below); here the pattern stands for them.
            line = line.replace('"$@"', '--dump "$DUMP"')
            expanded = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                              lambda m: env[m.group(1)], line)
            commands.append(shlex.split(expanded)[3:])
    return commands


def test_training_job_trains_then_publishes_with_the_model_cli():
    from model.__main__ import parser

    (job,) = _load_yaml_docs(TRAIN_JOB)
    assert job["kind"] == "Job" and job["metadata"]["generateName"].startswith("addlink-train-")
    commands = _train_commands(job)
    assert [c[0] for c in commands] == ["train", "publish"], commands
    train, publish = (parser().parse_args(c) for c in commands)
    # --dump is repeatable (a dump in part files): every one of them from the dumps volume.
    assert train.dump and all(d.startswith("/dumps/") for d in train.dump)
    assert train.out.startswith("/trained/")
    assert {d.split("/")[2] for d in train.dump} == {train.wiki}
    assert train.wiki == Path(train.out).name
    assert publish.model == train.out, "publish must hand over the model just trained"
    assert train.workers is None, "the worker count follows the CPU limit (available_cpus)"
    c = container(job)
    assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert 2 in job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"]


def test_training_job_turns_each_part_file_of_the_dump_into_a_dump_option(tmp_path):
    """The script's loop, run by /bin/sh: a glob of part files becomes one --dump each, in
    the shell's (sorted) order; one plain file stays one --dump."""
    import subprocess

    (job,) = _load_yaml_docs(TRAIN_JOB)
    script = "\n".join(container(job)["args"]).splitlines()
    loop = [x.strip() for x in script if x.strip() == "set --" or x.strip().startswith("for part")]
    assert len(loop) == 2, script
    for name in ("w-pages-articles1.xml-p1p9.bz2", "w-pages-articles2.xml-p10p20.bz2",
                 "w-pages-articles-multistream.xml.bz2"):
        (tmp_path / name).write_bytes(b"")
    show = "\n".join(loop) + '\nprintf "%s\\n" "$@"\n'

    def args(dump: str) -> list[str]:
        out = subprocess.run(["/bin/sh", "-ec", show], env={"DUMP": dump}, check=True,
                             capture_output=True, text=True).stdout
        return out.splitlines()

    assert args(str(tmp_path / "w-pages-articles[0-9]*.xml-p*.bz2")) == [
        "--dump", str(tmp_path / "w-pages-articles1.xml-p1p9.bz2"),
        "--dump", str(tmp_path / "w-pages-articles2.xml-p10p20.bz2")]
    one = str(tmp_path / "w-pages-articles-multistream.xml.bz2")
    assert args(one) == ["--dump", one]


def test_training_job_reads_the_dump_read_only_and_writes_models_and_scratch():
    (job,) = _load_yaml_docs(TRAIN_JOB)
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container(job)["volumeMounts"]}
    dumps = mounts["/dumps"]
    assert dumps.get("readOnly") is True
    assert volumes[dumps["name"]]["persistentVolumeClaim"].get("readOnly") is True
    assert not mounts["/trained"].get("readOnly")
    env = {e["name"]: e.get("value") for e in container(job)["env"]}
    assert env["TMPDIR"] in mounts, "the corpus file must go to a mounted scratch volume"
    assert "ephemeral" in volumes[mounts[env["TMPDIR"]]["name"]]
    claims = {d["metadata"]["name"]
              for d in _load_yaml_docs(MANIFESTS / "training" / "volumes.yaml")}
    assert {v["persistentVolumeClaim"]["claimName"] for v in volumes.values()
            if "persistentVolumeClaim" in v} <= claims
    uid = _dockerfile_uid()
    assert pod["securityContext"]["runAsUser"] == uid and pod["securityContext"]["runAsNonRoot"]
    csc = container(job)["securityContext"]
    assert csc["readOnlyRootFilesystem"] is True and csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"]["drop"] == ["ALL"]
