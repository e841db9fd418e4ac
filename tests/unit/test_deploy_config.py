"""docker-compose, Prometheus and Grafana files held to the code (Docker cannot run in the tests).

Workers scale without sharing a metrics folder; Prometheus scrapes the ports the services really
serve; every metric and label a dashboard panel asks for is one the web or a worker exports.
"""

import json
import re

import pytest
import yaml

from config.settings import PROJECT_ROOT
from tasks.metrics import WorkerMetrics
from tasks.metrics_endpoint import ModelInfoCollector
from tests.support.broker_series import RABBITMQ_SERIES

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus.yml").read_text())
DASHBOARD_FILES = sorted((PROJECT_ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = yaml.safe_load(
    (PROJECT_ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
)
# Labels Prometheus adds to every series it scrapes, and its own per-target series.
SCRAPE_LABELS = {"job", "instance"}
PROMETHEUS_SERIES = {"up": set()}
ALERTS = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
PROMQL_WORDS = {"sum", "rate", "by", "max", "count", "histogram_quantile", "without", "avg", "min"}


def service(name: str) -> dict:
    return COMPOSE["services"][name]


def scrape_job(name: str) -> dict:
    [job] = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == name]
    return job


def exported_series(client) -> dict[str, set[str]]:
    """Sample name → label names, from the web's real /metrics and a worker's real metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    series = {}
    client.get("/health")  # labelled request series appear once a request was counted
    families = list(text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)))
    worker = WorkerMetrics()
    for metric in (worker.batch_size, worker.batch_seconds, worker.jobs):
        families.extend(metric.collect())
    families.extend(ModelInfoCollector(lambda: {"runtime": "litert", "weights_sha256": "0" * 16}).collect())
    for family in families:
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def selectors(expr: str):
    """(metric, {label names}) for each selector in a PromQL expression: ``name{...}`` or ``name[...]``."""
    for name, matchers in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\}|\[)", expr):
        if name not in PROMQL_WORDS:
            yield name, set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))


def test_no_metrics_folder_is_shared_between_containers():
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "PROMETHEUS_MULTIPROC_DIR" not in text
    assert "metrics" not in COMPOSE["volumes"]
    for name, spec in COMPOSE["services"].items():
        assert not any(str(volume).split(":")[-1].startswith("/metrics") for volume in spec.get("volumes", [])), name


def test_every_worker_replica_serves_its_metrics_on_the_port_prometheus_scrapes():
    worker = service("worker")
    port = int(worker["environment"]["WORKER_METRICS_PORT"])
    assert str(port) in worker["expose"]
    assert "ports" not in worker, "a published host port would collide under --scale"
    [target] = scrape_job("worker")["dns_sd_configs"]
    assert target["names"] == ["worker"] and target["type"] == "A" and target["port"] == port
    [web_target] = scrape_job("web")["dns_sd_configs"]
    assert web_target["names"] == ["web"] and f"0.0.0.0:{web_target['port']}" in service("web")["command"]


def test_monitoring_profile_mounts_files_that_exist():
    for name in ("prometheus", "grafana"):
        spec = service(name)
        assert spec["profiles"] == ["monitoring"]
        for volume in spec["volumes"]:
            source = volume.split(":")[0]
            assert (PROJECT_ROOT / source).exists(), volume
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in service("prometheus")["volumes"]
    providers = yaml.safe_load(
        (PROJECT_ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    mounted = {volume.split(":")[1] for volume in service("grafana")["volumes"]}
    assert {provider["options"]["path"] for provider in providers["providers"]} <= mounted


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_dashboard_panels_ask_for_metrics_and_labels_the_code_exports(path, client):
    dashboard = json.loads(path.read_text())
    datasource_uids = {source["uid"] for source in DATASOURCES["datasources"]}
    series = {**exported_series(client), **PROMETHEUS_SERIES, **RABBITMQ_SERIES}
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Throughput", "Queue depth", "Request latency", "Batch size and model call time", "Failures"} <= titles
    assert {"Broker queue depth", "Oldest pending job", "Dead-lettered messages", "Webhook attempts"} <= titles
    assert {"Batches in progress", "Batch completion rate"} <= titles
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in datasource_uids, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            found = list(selectors(target["expr"]))
            assert found, f"{panel['title']}: no metric in {target['expr']}"
            for name, labels in found:
                assert name in series, f"{panel['title']}: {name} is not exported"
                assert labels <= series[name] | SCRAPE_LABELS, f"{panel['title']}: {name} has no {labels}"


def test_alert_rules_ask_for_metrics_and_labels_that_exist(client):
    series = {**exported_series(client), **PROMETHEUS_SERIES, **RABBITMQ_SERIES}
    rules = [rule for group in ALERTS["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == {
        "JobWaitingTooLong",
        "DeadLetteredJobs",
        "NoWorker",
        "WebhookFailuresRising",
    }
    for rule in rules:
        found = list(selectors(rule["expr"]))
        assert found, rule["alert"]
        for name, labels in found:
            assert name in series, f"{rule['alert']}: {name} is not exported"
            assert labels <= series[name] | SCRAPE_LABELS, f"{rule['alert']}: {name} has no {labels}"


def test_prometheus_scrapes_the_broker_and_loads_the_alerts():
    assert [target for job in ("rabbitmq", "rabbitmq-queues") for target in scrape_job(job)["static_configs"]] == [
        {"targets": ["rabbitmq:15692"]},
        {"targets": ["rabbitmq:15692"]},
    ]
    assert scrape_job("rabbitmq-queues")["metrics_path"] == "/metrics/detailed"
    [rules] = PROMETHEUS["rule_files"]
    assert f"./deploy/{rules}:/etc/prometheus/{rules}:ro" in service("prometheus")["volumes"]
    plugins = (PROJECT_ROOT / "deploy" / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    assert "./deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro" in service("rabbitmq")["volumes"]
