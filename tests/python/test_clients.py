"""Real clients nobody here wrote, against the real daemon.

Python's `datadog` (DogStatsd) and `statsd` clients send over UDP; the
exposition is read back with `prometheus_client`'s own parser and validated by
Prometheus' `promtool check metrics`. Run by scripts/test.sh with the path of
the tallyd binary in TALLYD_BIN.
"""

import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from datadog.dogstatsd import DogStatsd
from prometheus_client.parser import text_string_to_metric_families
import statsd

TALLYD = os.environ.get("TALLYD_BIN", "target/debug/tallyd")
DEADLINE_S = 20


class Daemon:
    """tallyd on port 0; addresses from its `ready` log line. With `client`
    (an ssl context and headers, as receivers.WebConfig.client() gives), the
    test's own requests use HTTPS with that context and those headers."""

    def __init__(self, extra="", listen="", window="200ms", env=None, client=None):
        self.scheme = "http" if client is None else "https"
        self.context, self.auth_headers = client or (None, {})
        self.config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        self.config.write(
            'listen: { udp: ["127.0.0.1:0"], http: "127.0.0.1:0"' + listen + " }\n"
            f"window: {{ interval: {window} }}\n"
            "logging: { format: json }\n" + extra
        )
        self.config.close()
        self.proc = subprocess.Popen(
            [TALLYD, "--config", self.config.name],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for line in self.proc.stderr:
            event = json.loads(line)
            if event.get("message") == "ready":
                self.http = event["http"]
                host, port = event["udp"].split(",")[0].rsplit(":", 1)
                self.udp = (host, int(port))
                self.grpc = event.get("grpc")
                break
        else:
            raise RuntimeError("tallyd exited before it was ready")
        # Keep reading the log so a chatty daemon never blocks on a full pipe.
        self.log_reader = threading.Thread(target=self.proc.stderr.read, daemon=True)
        self.log_reader.start()
        self.wait_for(lambda: self.get("/readyz")[0] == 200, "/readyz")

    def get(self, path, headers=None, method="GET"):
        request = urllib.request.Request(
            f"{self.scheme}://{self.http}{path}",
            headers={**self.auth_headers, **(headers or {})},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, context=self.context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def exposition(self):
        status, body = self.get("/metrics")
        assert status == 200
        return body

    def samples(self):
        """{(name, frozenset(labels)): value} parsed by prometheus_client."""
        out = {}
        for family in text_string_to_metric_families(self.exposition()):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def wait_for(self, condition, what):
        deadline = time.monotonic() + DEADLINE_S
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(DEADLINE_S)
        self.log_reader.join(DEADLINE_S)
        self.proc.stderr.close()
        os.unlink(self.config.name)
        return code


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()

    def tearDown(self):
        self.assertEqual(self.daemon.stop(), 0)

    def test_datadog_client_metrics_with_tags_roll_up_exactly(self):
        client = DogStatsd(
            host=self.daemon.udp[0], port=self.daemon.udp[1], disable_telemetry=True
        )
        client.increment("dd.requests", 2, tags=["env:prod", "az:b"])
        client.increment("dd.requests", 3, tags=["az:b", "env:prod"])
        client.gauge("dd.queue", 17, tags=["env:prod"])
        for v in [5, 1, 4, 2, 3]:
            client.timing("dd.latency", v)
        client.distribution("dd.size", 1.5)
        client.set("dd.users", "alice")
        client.set("dd.users", "bob")
        client.event("deploy", "v2 is out")
        client.service_check("dd.db", DogStatsd.OK)
        client.flush()

        def ready():
            s = self.daemon.samples()
            return (
                value(s, "dd_requests_total", env="prod", az="b") == 5
                and value(s, "dd_latency_count") == 5
                and value(s, "dd_size_count") == 1
            )

        self.daemon.wait_for(ready, "datadog client metrics")
        s = self.daemon.samples()
        self.assertEqual(value(s, "dd_queue", env="prod"), 17)
        self.assertEqual(value(s, "dd_latency_sum"), 15)
        self.assertEqual(value(s, "dd_size_sum"), 1.5)
        self.assertEqual(value(s, "tallyd_events_received_total", transport="udp"), 1)
        self.assertEqual(value(s, "tallyd_service_checks_received_total", transport="udp"), 1)

        status, body = self.daemon.get("/api/v1/rollups?name=dd.users&windows=100")
        self.assertEqual(status, 200)
        uniques = [s["unique"] for w in json.loads(body)["windows"] for s in w["series"]]
        self.assertEqual(sum(uniques), 2)

    def test_statsd_client_sample_rates_and_gauge_deltas(self):
        client = statsd.StatsClient(self.daemon.udp[0], self.daemon.udp[1])
        client.gauge("sd.pool", 10)
        client.gauge("sd.pool", 5, delta=True)
        client.gauge("sd.pool", -3, delta=True)
        # A rate of 1 would be sent unmarked; 0.999999 keeps the @ field and
        # passes the client's random sampling all but once in a million.
        client.incr("sd.hits", 1, rate=0.999999)
        client.timing("sd.db", 12)
        with client.pipeline() as pipe:
            pipe.incr("sd.hits", 2)
            pipe.timing("sd.db", 8)

        def ready():
            s = self.daemon.samples()
            return value(s, "sd_pool") == 12 and value(s, "sd_db_count") == 2

        self.daemon.wait_for(ready, "statsd client metrics")
        s = self.daemon.samples()
        self.assertAlmostEqual(value(s, "sd_hits_total"), 2 + 1 / 0.999999, places=9)
        self.assertEqual(value(s, "sd_db_sum"), 20)

    def test_promtool_accepts_the_exposition(self):
        client = statsd.StatsClient(self.daemon.udp[0], self.daemon.udp[1])
        client.incr("pt.count")
        client.timing("pt.lat", 3)
        client.gauge("pt.level", 1)
        client.set("pt.set", "x")
        self.daemon.wait_for(lambda: value(self.daemon.samples(), "pt_lat_count") == 1, "pt.lat")
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=self.daemon.exposition(),
            capture_output=True,
            text=True,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        openmetrics = self.daemon.get(
            "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
        )[1]
        self.assertTrue(openmetrics.endswith("# EOF\n"))


class HistogramTests(unittest.TestCase):
    def test_promtool_accepts_histograms_and_nan_quantiles(self):
        daemon = Daemon(
            "aggregation:\n  histograms:\n    - match: 'h.*'\n      buckets: [1, 10]\n"
        )
        try:
            client = statsd.StatsClient(*daemon.udp)
            client.timing("h.rpc", 5)
            client.timing("other", 5)
            daemon.wait_for(
                lambda: value(daemon.samples(), "h_rpc_bucket", le="10") == 1, "buckets"
            )
            # The next empty window turns the summary's quantiles into NaN.
            daemon.wait_for(lambda: "NaN" in daemon.exposition(), "a NaN quantile")
            result = subprocess.run(
                ["promtool", "check", "metrics"],
                input=daemon.exposition(),
                capture_output=True,
                text=True,
            )
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        finally:
            self.assertEqual(daemon.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
