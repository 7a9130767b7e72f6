"""Native histograms, read by a parser and a server nobody here wrote.

The protobuf exposition is decoded with Prometheus' own `metrics.proto` (from
Debian's golang-github-prometheus-client-model-dev, compiled by grpcio-tools),
and Debian's Prometheus server scrapes two tallyd instances with native
histograms enabled and answers PromQL over them. Bucket indices are checked
against Prometheus' definition, `base^(k-1) < v <= base^k` with base
`2^(2^-schema)`, worked out here with Python's own arithmetic.

Run by scripts/test.sh with the path of the tallyd binary in TALLYD_BIN.
"""

import importlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import statsd

from receivers import Prometheus, wait_for
from test_clients import Daemon, value

METRICS_PROTO = (
    "/usr/share/gocode/src/github.com/prometheus/client_model/"
    "io/prometheus/client/metrics.proto"
)
PROTOBUF_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
    "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"
)
NATIVE = "aggregation: { native_histograms: { enabled: true } }\n"
# Schema 3: a bucket is 2^(1/8) - 1 = 9.05% wide.
BUCKET_WIDTH = 2 ** (1 / 8) - 1


def metrics_pb2():
    """Prometheus' metrics.proto, compiled for Python."""
    out = tempfile.mkdtemp()
    # Its own folder and a plain name: `io.prometheus...` would shadow Python's `io`.
    shutil.copy(METRICS_PROTO, os.path.join(out, "prometheus_metrics.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{out}",
            f"--python_out={out}",
            os.path.join(out, "prometheus_metrics.proto"),
        ],
        check=True,
    )
    sys.path.insert(0, out)
    return importlib.import_module("prometheus_metrics_pb2")


def decode_delimited(body, message_type):
    """Length-delimited messages, as Prometheus' scraper reads them."""
    from google.protobuf.internal.decoder import _DecodeVarint32

    messages, position = [], 0
    while position < len(body):
        size, position = _DecodeVarint32(body, position)
        messages.append(message_type.FromString(body[position : position + size]))
        position += size
    return messages


def expected_key(v, schema=3):
    """Prometheus' definition: the k with base^(k-1) < |v| <= base^k."""
    return math.ceil(math.log2(abs(v)) * 2**schema)


def native_buckets(spans, deltas):
    """{key: count} from spans and delta-encoded counts."""
    buckets, key, count, i = {}, 0, 0, 0
    for span in spans:
        key += span.offset
        for _ in range(span.length):
            count += deltas[i]
            if count:
                buckets[key] = count
            key += 1
            i += 1
    return buckets


def exact_quantile(values, q):
    """tallyd's exact quantile: the value at rank ceil(q * n)."""
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


def latencies(seed, n):
    """Values far from bucket edges: a log-normal spread of milliseconds."""
    rng = random.Random(seed)
    return [round(rng.lognormvariate(3, 1), 3) for _ in range(n)]


def send_all(daemon, name, values):
    client = statsd.StatsClient(*daemon.udp)
    for v in values:
        client.timing(name, v)
    client.close()
    family = name.replace(".", "_")
    daemon.wait_for(
        lambda: value(daemon.samples(), f"{family}_count") == len(values),
        f"{len(values)} samples of {name}",
    )


class ProtobufExpositionTests(unittest.TestCase):
    def test_prometheus_metrics_proto_decodes_native_buckets(self):
        pb = metrics_pb2()
        daemon = Daemon(NATIVE)
        try:
            values = latencies(1, 500) + [0.0, -2.5]
            send_all(daemon, "rpc.latency", values)
            request = urllib.request.Request(
                f"http://{daemon.http}/metrics", headers={"Accept": PROTOBUF_ACCEPT}
            )
            with urllib.request.urlopen(request) as response:
                self.assertIn("application/vnd.google.protobuf", response.headers["Content-Type"])
                self.assertIn("encoding=delimited", response.headers["Content-Type"])
                families = {
                    f.name: f for f in decode_delimited(response.read(), pb.MetricFamily)
                }

            latency = families["rpc_latency"]
            self.assertEqual(latency.type, pb.HISTOGRAM)
            histogram = latency.metric[0].histogram
            self.assertEqual(histogram.schema, 3)
            self.assertEqual(histogram.sample_count, len(values))
            self.assertAlmostEqual(histogram.sample_sum, sum(values), places=6)
            self.assertEqual(histogram.zero_count, 1)
            expected = {}
            for v in values:
                if v > 0:
                    k = expected_key(v)
                    expected[k] = expected.get(k, 0) + 1
            self.assertEqual(
                native_buckets(histogram.positive_span, histogram.positive_delta), expected
            )
            self.assertEqual(
                native_buckets(histogram.negative_span, histogram.negative_delta),
                {expected_key(-2.5): 1},
            )
            # tallyd's own families travel in the same format.
            received = families["tallyd_lines_received_total"]
            self.assertEqual(received.type, pb.COUNTER)
            self.assertGreaterEqual(
                sum(m.counter.value for m in received.metric), len(values)
            )

            # The text formats carry the same family as a histogram without
            # native buckets, and promtool accepts it.
            text = daemon.exposition()
            self.assertIn("# TYPE rpc_latency histogram", text)
            self.assertIn(f'rpc_latency_bucket{{le="+Inf"}} {len(values)}', text)
            check = subprocess.run(
                ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
            )
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        finally:
            self.assertEqual(daemon.stop(), 0)


class BinnedTimerTests(unittest.TestCase):
    def test_json_marks_quantiles_estimated_from_a_histogram(self):
        daemon = Daemon("aggregation: { timer_samples: histogram }\n")
        try:
            values = latencies(4, 300)
            send_all(daemon, "db.query", values)
            status, body = daemon.get("/api/v1/rollups?name=db.query&windows=100")
            self.assertEqual(status, 200)
            series = [s for w in json.loads(body)["windows"] for s in w["series"]]
            self.assertTrue(series)
            self.assertEqual(sum(s["count"] for s in series), len(values))
            for s in series:
                self.assertEqual(s["quantiles_from"], "histogram")
                self.assertLessEqual(s["min"], s["quantiles"]["0.5"])
                self.assertLessEqual(s["quantiles"]["0.99"], s["max"])
        finally:
            self.assertEqual(daemon.stop(), 0)


class PrometheusServerTests(unittest.TestCase):
    def test_quantiles_over_two_hosts_come_from_their_merged_buckets(self):
        a, b = Daemon(NATIVE), Daemon(NATIVE)
        prometheus = None
        try:
            values_a, values_b = latencies(2, 400), latencies(3, 600)
            send_all(a, "api.latency", values_a)
            send_all(b, "api.latency", values_b)
            prometheus = Prometheus([a.http, b.http])
            total = len(values_a) + len(values_b)
            wait_for(
                lambda: prometheus.query("histogram_count(sum(api_latency))") == total,
                "both instances' histograms",
            )
            instance_a = f'api_latency{{instance="{a.http}"}}'
            self.assertEqual(prometheus.query(f"histogram_count({instance_a})"), len(values_a))
            self.assertAlmostEqual(
                prometheus.query(f"histogram_sum({instance_a})"), sum(values_a), places=3
            )

            for promql, values in [
                (f"histogram_quantile(0.99, {instance_a})", values_a),
                ("histogram_quantile(0.99, sum(api_latency))", values_a + values_b),
                ("histogram_quantile(0.5, sum(api_latency))", values_a + values_b),
            ]:
                exact = exact_quantile(values, float(promql.split("(")[1].split(",")[0]))
                answer = prometheus.query(promql)
                self.assertIsNotNone(answer, promql)
                self.assertLessEqual(
                    abs(answer - exact) / exact,
                    BUCKET_WIDTH,
                    f"{promql} = {answer}, exact {exact}",
                )
        finally:
            if prometheus:
                prometheus.stop()
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
