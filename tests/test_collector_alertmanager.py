"""collector/alertmanager/alertmanager.yml: Debian's `amtool check-config` accepts it, `amtool config
routes test` sends every rule of alerts.yml and slo-rules.yml to the receiver of its severity, and a
real Alertmanager (Debian `prometheus-alertmanager`, on loopback) fed with alerts delivers the
critical ones to the page webhook and the warnings to the ticket webhook, holds back a warning
whose critical tier fires for the same service, and notifies nobody for info."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from _collector import COLLECTOR, require_tool
from _service import free_port

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

AM = COLLECTOR / "alertmanager"
CONFIG = AM / "alertmanager.yml"
RECEIVER = {"critical": "page", "warning": "ticket", "info": "info"}


def _rules() -> list[dict]:
    rules = []
    for name in ("alerts.yml", "slo-rules.yml"):
        rules += [r for g in yaml.safe_load((COLLECTOR / "prometheus" / name).read_text())["groups"] for r in g["rules"] if "alert" in r]
    return rules


def test_amtool_check_config():
    amtool = require_tool("amtool")
    proc = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and "2 inhibit rules" in proc.stdout and "3 receivers" in proc.stdout


def test_amtool_check_config_catches_a_broken_route(tmp_path):
    """The same check fails on a route to a receiver that does not exist (proves it checks)."""
    amtool = require_tool("amtool")
    config = yaml.safe_load(CONFIG.read_text())
    config["route"]["routes"][0]["receiver"] = "pager"
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(config))
    proc = subprocess.run([amtool, "check-config", str(broken)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "pager" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "labels", [{"alertname": r["alert"], **r["labels"]} for r in _rules()], ids=lambda labels: "-".join(str(v) for v in labels.values())
)
def test_every_rule_routes_by_its_severity(labels):
    amtool = require_tool("amtool")
    args = [f"{k}={v}" for k, v in {**labels, "job": "agent-service"}.items()]
    expected = RECEIVER[labels["severity"]]
    proc = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={expected}", *args],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == expected


def test_unknown_severity_still_reaches_a_person():
    amtool = require_tool("amtool")
    proc = subprocess.run([amtool, "config", "routes", "test", f"--config.file={CONFIG}", "alertname=Other", "severity=major"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ticket", proc.stdout + proc.stderr


class _Webhooks(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.received: list[tuple[str, dict]] = []


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[tuple[str, _Webhooks]]:
    """A real Alertmanager with the example config; only the webhook URLs (to a local server) and
    the grouping waits (seconds instead of minutes) differ."""
    binary = require_tool("prometheus-alertmanager")
    hooks = _Webhooks()
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    config = yaml.safe_load(CONFIG.read_text())
    base = f"http://127.0.0.1:{hooks.server_address[1]}"
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = base + "/" + receiver["name"]
    config["route"].update(group_wait="1s", group_interval="1s")
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "alertmanager did not start"
                time.sleep(0.1)
        yield url, hooks
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        hooks.shutdown()


def _post(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": labels["alertname"]}} for labels in alerts]).encode()
    request = urllib.request.Request(url + "/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def test_real_alertmanager_routes_and_inhibits(alertmanager):
    url, hooks = alertmanager
    critical = [
        {"alertname": "AgentwatchHighErrorRatio", "job": "a", "severity": "critical"},
        {"alertname": "AgentwatchScrapeTargetDown", "job": "c", "instance": "10.0.0.1:9464", "severity": "critical"},
    ]
    others = [
        {"alertname": "AgentwatchHighErrorRatio", "job": "a", "severity": "warning"},  # held back: its critical fires
        {"alertname": "AgentwatchHighErrorRatio", "job": "b", "severity": "warning"},  # another service: ticket
        {"alertname": "AgentwatchServiceSilent", "job": "c", "severity": "critical"},  # held back: scrape target down
        {"alertname": "AgentwatchCritiqueFirstTryAcceptanceLow", "job": "a", "severity": "info"},  # nobody
    ]
    _post(url, critical)
    time.sleep(0.5)  # the inhibitor sees the sources before the targets arrive
    _post(url, others)

    def delivered() -> set[tuple[str, str, str, str]]:
        return {(path, a["labels"]["alertname"], a["labels"]["job"], a["labels"]["severity"]) for path, body in hooks.received for a in body["alerts"]}

    expected = {
        ("/page", "AgentwatchHighErrorRatio", "a", "critical"),
        ("/page", "AgentwatchScrapeTargetDown", "c", "critical"),
        ("/ticket", "AgentwatchHighErrorRatio", "b", "warning"),
    }
    deadline = time.monotonic() + 20
    while delivered() < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # a few more group intervals: what was held back stays held back
    assert delivered() == expected
    status = json.load(urllib.request.urlopen(url + "/api/v2/alerts", timeout=5))
    inhibited = {(a["labels"]["alertname"], a["labels"]["job"], a["labels"]["severity"]) for a in status if a["status"]["inhibitedBy"]}
    assert inhibited == {("AgentwatchHighErrorRatio", "a", "warning"), ("AgentwatchServiceSilent", "c", "critical")}
