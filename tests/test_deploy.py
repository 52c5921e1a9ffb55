"""The deployment files: alert rules and dashboard queries (promtool), the Grafana dashboard
against the metrics app/metrics.py defines, docker-compose.yml, the Kubernetes manifests, the
Dockerfile and .dockerignore. No Docker engine or cluster is needed: these are static checks.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from app import cli, metrics
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "creditgate.json"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"

PROMTOOL_MISSING = (
    "promtool NOT FOUND: the Prometheus alert rules and the dashboard's PromQL were NOT "
    "validated. Install it with `apt-get install -y --no-install-recommends prometheus` "
    "(Debian/Ubuntu; `make test` does this by itself when run as root) or put Prometheus' "
    "promtool binary on PATH."
)
METRIC_NAME = re.compile(r"\bcreditgate_[A-Za-z0-9_]+")
GRAFANA_VARIABLE = re.compile(r"\$__\w+|\$\{__\w+\}")


# --- helpers ---------------------------------------------------------------------------------

def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(PROMTOOL_MISSING)
    return path


def _run_promtool(*args: str, cwd: Path) -> None:
    done = subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{done.stdout}{done.stderr}"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def _k8s(kind: str, *, component: str | None = None) -> dict[str, Any]:
    found = [o for o in _k8s_objects() if o["kind"] == kind and (
        component is None
        or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def _exposed_metric_names(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every sample name the app's /metrics can expose, read from app.metrics itself."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    text = metrics.render(0).decode()
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        if not name.startswith("creditgate_"):
            continue
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    assert "creditgate_decisions_total" in names, "app.metrics exposes no decision counter?"
    return names


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _dashboard_panels() -> list[dict[str, Any]]:
    panels = []
    for panel in _dashboard()["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])  # collapsed rows nest their panels
    return panels


def _dashboard_queries() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in _dashboard_panels()
            for target in panel.get("targets", [])]


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(ALERTS)["groups"] for rule in group["rules"]]


def _known_env() -> set[str]:
    """The environment variables app/settings.py reads."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"CREDITGATE_{name.upper()}")
    return names


def _assert_cli_accepts(command: list[str]) -> None:
    assert command[0] == "creditgate", command
    try:
        cli._parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"`creditgate` does not accept {shlex.join(command[1:])!r}")


# --- (a) promtool ---------------------------------------------------------------------------

def test_alert_rules_pass_promtool_check():
    _run_promtool("check", "rules", ALERTS.name, cwd=PROMETHEUS)


def test_alert_rules_unit_tests_pass():
    _run_promtool("test", "rules", "alerts.test.yml", cwd=PROMETHEUS)


def test_prometheus_config_passes_promtool_check():
    _run_promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS)


def test_dashboard_queries_are_valid_promql(tmp_path):
    rules = [{"record": f"dashboard:query_{i}",
              "expr": GRAFANA_VARIABLE.sub("1m", expr)}
             for i, (_title, expr) in enumerate(_dashboard_queries())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _run_promtool("check", "rules", str(path), cwd=tmp_path)


# --- (b) dashboard and alerts use only metrics the code defines ------------------------------

def test_dashboard_uses_only_metrics_the_app_defines(monkeypatch):
    exposed = _exposed_metric_names(monkeypatch)
    unknown = {(title, name) for title, expr in _dashboard_queries()
               for name in METRIC_NAME.findall(expr) if name not in exposed}
    assert not unknown, f"dashboard panels query metrics app/metrics.py does not define: {unknown}"


def test_alerts_use_only_metrics_the_app_defines(monkeypatch):
    exposed = _exposed_metric_names(monkeypatch)
    unknown = {(rule["alert"], name) for rule in _alert_rules()
               for name in METRIC_NAME.findall(rule["expr"]) if name not in exposed}
    assert not unknown, f"alert rules use metrics app/metrics.py does not define: {unknown}"


def test_dashboard_has_the_required_panels():
    queries = "\n".join(expr for _title, expr in _dashboard_queries())
    for needed in ("sum by (outcome) (rate(creditgate_decisions_total",
                   'outcome=~"hold|prepay"',
                   "histogram_quantile(0.5, sum by (le) (rate(creditgate_decision_seconds_bucket",
                   "histogram_quantile(0.95, sum by (le) (rate(creditgate_decision_seconds_bucket",
                   "histogram_quantile(0.99, sum by (le) (rate(creditgate_decision_seconds_bucket",
                   'creditgate_http_requests_total{status=~"5..',
                   'creditgate_http_requests_total{status=~"4..',
                   'creditgate_cache_requests_total{result="hit"}',
                   "creditgate_holds_open",
                   "creditgate_db_pool_connections_in_use",
                   "sum by (le, route) (rate(creditgate_http_request_seconds_bucket"):
        assert needed in queries, f"no dashboard panel queries {needed!r}"


def test_dashboard_is_wired_to_the_provisioned_datasource():
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds_var = variables["DS_PROMETHEUS"]
    assert ds_var["type"] == "datasource" and ds_var["query"] == "prometheus"
    provisioned = _yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert ds_var["current"]["value"] in {d["uid"] for d in provisioned}
    ids = [p["id"] for p in _dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_alert_rules_are_complete():
    rules = {rule["alert"]: rule for rule in _alert_rules()}
    for name in ("CreditgateHigh5xxRate", "CreditgateDecisionLatencyHigh",
                 "CreditgateHoldRateSpike", "CreditgateCacheErrors", "CreditgateTargetDown",
                 "CreditgateNotReady", "CreditgateReservationsExpiringInBulk"):
        assert name in rules, f"missing alert {name}"
    for name, rule in rules.items():
        assert rule.get("for"), f"{name} has no `for:`"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"].get("summary"), name
        assert rule["annotations"].get("description"), name
    assert 'result="error"' in rules["CreditgateCacheErrors"]["expr"]
    assert "up{job=\"creditgate\"} == 0" in rules["CreditgateTargetDown"]["expr"]
    assert "[1d]" in rules["CreditgateHoldRateSpike"]["expr"]


# --- (c) docker compose -------------------------------------------------------------------------

def test_compose_stack_has_every_service_with_healthchecks():
    services = _yaml(COMPOSE)["services"]
    assert {"api", "migrate", "postgres", "redis", "prometheus", "grafana"} <= services.keys()
    for name in ("api", "postgres", "redis", "prometheus", "grafana"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_compose_migrates_once_before_the_api_starts():
    services = _yaml(COMPOSE)["services"]
    migrate, api = services["migrate"], services["api"]
    assert migrate["command"] == ["creditgate", "migrate"]
    _assert_cli_accepts(migrate["command"])
    assert migrate.get("restart", "no") == "no"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    _assert_cli_accepts(api["command"])
    assert "migrate" not in api["command"], "the api must not migrate at start"


def test_compose_environment_names_settings_the_app_reads():
    known = _known_env()
    for name in ("api", "migrate"):
        env = _yaml(COMPOSE)["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert not set(env) - known, f"{name}: unknown settings {set(env) - known}"


def test_compose_mounts_exist_and_wire_prometheus_and_grafana():
    services = _yaml(COMPOSE)["services"]
    targets = {}
    for service in services.values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"compose mounts missing {source}"
                targets[target] = DEPLOY / source
    prometheus = _yaml(PROMETHEUS / "prometheus.yml")
    config_dir = PurePosixPath("/etc/prometheus")
    for rule_file in prometheus["rule_files"]:
        assert str(config_dir / rule_file) in targets, f"{rule_file} is not mounted"
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["creditgate"]["static_configs"][0]["targets"] == ["api:8000"]
    assert "127.0.0.1:8000:8000" in services["api"]["ports"]
    providers = _yaml(PROVISIONING / "dashboards" / "creditgate.yml")["providers"]
    dashboard_dir = providers[0]["options"]["path"]
    assert targets[f"{dashboard_dir}/creditgate.json"] == DASHBOARD
    assert targets["/etc/grafana/provisioning"] == PROVISIONING
    datasource = _yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"


# --- (c) Kubernetes -------------------------------------------------------------------------

def test_kustomization_lists_existing_files_but_not_the_secret_example():
    kustomization = _yaml(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), f"kustomization lists missing {resource}"
    assert "secret.example.yaml" not in kustomization["resources"]
    listed = set(kustomization["resources"]) | {"kustomization.yaml", "secret.example.yaml"}
    unlisted = {p.name for p in K8S.glob("*.yaml")} - listed
    assert not unlisted, f"manifests not in kustomization.yaml: {unlisted}"


def test_deployment_probes_resources_and_shutdown():
    deployment = _k8s("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in {"http", 8000}
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["http"] == 8000
    _assert_cli_accepts(container["args"])
    assert container["args"][:2] == ["creditgate", "serve"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()
    assert pod["terminationGracePeriodSeconds"] >= 15
    assert container["lifecycle"]["preStop"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_deployment_runs_non_root_on_a_read_only_root_with_an_emptydir_for_metrics():
    pod = _k8s("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or _dockerfile_env()[
        "PROMETHEUS_MULTIPROC_DIR"]
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    covering = [path for path in mounts
                if metrics_dir == path or metrics_dir.startswith(path.rstrip("/") + "/")]
    assert covering and mounts[covering[0]] in empty_dirs, (
        f"PROMETHEUS_MULTIPROC_DIR={metrics_dir} is not on an emptyDir")
    refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
    assert {"creditgate-config", "creditgate-db"} <= refs


def test_service_hpa_and_pdb_select_the_api_pods():
    deployment = _k8s("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    service = _k8s("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    pdb = _k8s("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    hpa = _k8s("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]


def test_migration_job_runs_creditgate_migrate():
    job = _k8s("Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["creditgate", "migrate"]
    _assert_cli_accepts(container["command"])
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["image"] == _k8s("Deployment")["spec"]["template"]["spec"][
        "containers"][0]["image"]


def test_configmap_and_secret_example_carry_the_settings():
    known = _known_env()
    config = _k8s("ConfigMap")["data"]
    assert not set(config) - known, f"ConfigMap sets unknown settings {set(config) - known}"
    assert all(k.startswith("CREDITGATE_") or k == "REDIS_URL" for k in config)
    assert "DATABASE_URL" not in config, "DATABASE_URL belongs in the Secret"
    (secret,) = [d for d in yaml.safe_load_all((K8S / "secret.example.yaml").read_text()) if d]
    assert secret["kind"] == "Secret"
    assert "CHANGE-ME" in secret["stringData"]["DATABASE_URL"]
    assert secret["metadata"]["name"] == "creditgate-db"


# --- (c) Dockerfile ----------------------------------------------------------------------------

def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines()
             if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in _dockerfile():
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_python_slim():
    instructions = _dockerfile()
    assert len([k for k, _ in instructions if k == "FROM"]) >= 2
    args = dict(rest.split("=", 1) for k, rest in instructions if k == "ARG" and "=" in rest)
    images = [rest.split()[0] for k, rest in instructions if k == "FROM"]
    resolved = {args.get(image.strip("${}"), image) for image in images}
    assert resolved == {"python:3.11-slim"}
    assert any(k == "COPY" and "--from=build" in rest for k, rest in _runtime_stage())


def test_dockerfile_runs_as_non_root_with_a_livez_healthcheck():
    stage = _runtime_stage()
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "the runtime stage has no USER line"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    (healthcheck,) = [rest for keyword, rest in stage if keyword == "HEALTHCHECK"]
    assert "/livez" in healthcheck and "urllib" in healthcheck
    (cmd,) = [json.loads(rest) for keyword, rest in stage if keyword == "CMD"]
    assert cmd[:2] == ["creditgate", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert "--workers" in cmd
    _assert_cli_accepts(cmd)
    assert not [rest for keyword, rest in stage if keyword == "ENTRYPOINT"]
    assert "migrate" not in " ".join(cmd), "migrations are their own command"


def test_dockerignore_keeps_what_the_image_needs():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for needed in ("app", "migrations", "pyproject.toml", "README.md"):
        assert not any(fnmatch.fnmatch(needed, p) for p in patterns), f"{needed} is ignored"
    for unwanted in (".git", ".venv", "tests"):
        assert unwanted in patterns, f"{unwanted} should be in .dockerignore"
