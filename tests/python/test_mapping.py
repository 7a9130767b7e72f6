"""A statsd_exporter mapping file, fed by Python's `statsd` client.

Graphite-style dotted names, as most StatsD clients send them, become
Prometheus names and labels; the exposition is read back with
`prometheus_client`'s parser and checked by `promtool check metrics`.
"""

import os
import subprocess
import tempfile
import unittest

import statsd

from test_clients import Daemon, value

MAPPING = r"""
mappings:
- match: "api.*.*.*.latency"
  name: "api_request_latency"
  help: "API latency by host, method and endpoint"
  observer_type: histogram
  histogram_options: { buckets: [10, 50, 100] }
  labels: { host: "$1", method: "$2", endpoint: "$3" }
- match: "api.*.*.*.requests"
  name: "api_requests_total"
  labels: { method: "$2", endpoint: "$3" }
- match: "debug\\..*"
  match_type: regex
  action: drop
  name: "dropped"
"""


class MappingTests(unittest.TestCase):
    def setUp(self):
        self.mapping = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        self.mapping.write(MAPPING)
        self.mapping.close()
        self.daemon = Daemon(f"mapping: {{ file: {self.mapping.name} }}\n")

    def tearDown(self):
        self.assertEqual(self.daemon.stop(), 0)
        os.unlink(self.mapping.name)

    def test_graphite_style_names_become_labels(self):
        client = statsd.StatsClient(*self.daemon.udp)
        for host, count in [("host-12", 3), ("host-13", 4)]:
            for _ in range(count):
                client.incr(f"api.{host}.GET.users.requests")
        for ms in [5, 20, 70, 200]:
            client.timing("api.host-12.GET.users.latency", ms)
        client.incr("debug.noise")

        def ready():
            s = self.daemon.samples()
            return (
                value(s, "api_requests_total", method="GET", endpoint="users") == 7
                and value(
                    s,
                    "api_request_latency_count",
                    host="host-12",
                    method="GET",
                    endpoint="users",
                )
                == 4
            )

        self.daemon.wait_for(ready, "the mapped series")
        s = self.daemon.samples()
        labels = {"host": "host-12", "method": "GET", "endpoint": "users"}
        buckets = {
            le: value(s, "api_request_latency_bucket", le=le, **labels)
            for le in ["10", "50", "100", "+Inf"]
        }
        self.assertEqual(buckets, {"10": 1, "50": 2, "100": 3, "+Inf": 4})
        self.assertEqual(
            value(s, "api_request_latency_sum", **labels), 295
        )
        self.assertFalse(any(name.startswith("debug") for name, _ in s))
        self.assertEqual(
            value(s, "tallyd_lines_dropped_total", reason="mapping_drop"), 1
        )
        exposition = self.daemon.exposition()
        self.assertIn(
            "# HELP api_request_latency API latency by host, method and endpoint\n",
            exposition,
        )
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
