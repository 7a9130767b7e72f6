"""Servers nobody here wrote, started on free loopback ports for the tests:
Debian's Prometheus (scraper and remote-write receiver) and VictoriaMetrics."""

import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

DEADLINE_S = 60


def free_port():
    """A port free now, for a server that cannot report the one it bound."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what, deadline_s=DEADLINE_S):
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Server:
    """A process answering HTTP on `self.address`, with a data folder that
    outlives a restart."""

    def __init__(self):
        self.dir = tempfile.mkdtemp()
        self.address = f"127.0.0.1:{free_port()}"
        self.proc = None
        self.log = open(os.path.join(self.dir, "server.log"), "w")

    def command(self):
        raise NotImplementedError

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log)
        wait_for(self.ready, f"{self.command()[0]} to be ready")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://{self.address}{self.ready_path}") as r:
                return r.status == 200
        except OSError:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command()[0]} exited") from None
            return False

    def halt(self):
        """Stops the process, keeping its data for `start`."""
        self.proc.terminate()
        self.proc.wait(DEADLINE_S)

    def stop(self):
        self.halt()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def get_json(self, path, params):
        url = f"http://{self.address}{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url) as response:
            return json.load(response)

    def result(self, promql, at=None):
        """The result list of an instant query, at unix seconds `at` or now."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.get_json("/api/v1/query", params)["data"]["result"]

    def query(self, promql, at=None):
        """The value of a one-element instant vector, or None."""
        result = self.result(promql, at)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def own_metrics(self):
        """The server's own /metrics, parsed: {name: sum of its samples}."""
        with urllib.request.urlopen(f"http://{self.address}/metrics") as response:
            text = response.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[s.name] = out.get(s.name, 0.0) + s.value
        return out


class Prometheus(Server):
    """Debian's Prometheus with native histograms: scraping `targets`, and
    taking remote writes when `receiver`."""

    ready_path = "/-/ready"

    def __init__(self, targets=(), receiver=False):
        super().__init__()
        self.receiver = receiver
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global: { scrape_interval: 1s, evaluation_interval: 1s }\n")
            if targets:
                f.write(
                    "scrape_configs:\n"
                    "  - job_name: tallyd\n"
                    f"    static_configs: [ {{ targets: {json.dumps(list(targets))} }} ]\n"
                )
        self.start()

    def command(self):
        command = [
            "prometheus",
            f"--config.file={self.config}",
            f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
            f"--web.listen-address={self.address}",
            "--enable-feature=native-histograms",
        ]
        if self.receiver:
            command.append("--web.enable-remote-write-receiver")
        return command

    @property
    def write_url(self):
        return f"http://{self.address}/api/v1/write"


class VictoriaMetrics(Server):
    """Debian's single-node VictoriaMetrics; `flags` are added to its command."""

    ready_path = "/health"

    def __init__(self, *flags):
        super().__init__()
        self.flags = list(flags)
        self.start()

    def command(self):
        return [
            "victoria-metrics",
            f"-httpListenAddr={self.address}",
            f"-storageDataPath={os.path.join(self.dir, 'data')}",
            # Answer queries with what was just written.
            "-search.latencyOffset=0s",
            "-search.disableCache",
            *self.flags,
        ]

    @property
    def write_url(self):
        return f"http://{self.address}/api/v1/write"

    def query(self, promql, at=None):
        # Make what was written searchable first.
        urllib.request.urlopen(f"http://{self.address}/internal/force_flush").close()
        return super().query(promql, at)


def same(a, b):
    """Equal, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b
