"""OTLP export into receivers nobody here wrote.

- A gRPC and an HTTP receiver built from PyPI's `opentelemetry-proto`
  (grpcio's server, the generated MetricsService and message classes) decode
  every exported point; each must equal tallyd's rollup of its window, in
  both temporalities, with native histograms as exponential histograms. The
  receivers answer as a collector under load would (UNAVAILABLE, 503 with
  Retry-After, a partial success) and tallyd's counters must say so.
- TLS: a gRPC receiver demanding client certificates takes the sink that
  has one; the sink without one counts connection failures, keeps its data
  queued and drops nothing as rejected.
- Two tiers: a host tallyd exporting to an aggregator tallyd's OTLP ingest
  gives the aggregator the same rollups as sending to a tallyd directly.

Run by scripts/test.sh with the path of the tallyd binary in TALLYD_BIN.
"""

import contextlib
import gzip
import http.server
import json
import os
import shutil
import tempfile
import threading
import unittest
from concurrent import futures

# The receivers' TLS handshake failures are expected; keep grpc's C core quiet.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
import grpc  # noqa: E402
from datadog.dogstatsd import DogStatsd
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2 as service,
    metrics_service_pb2_grpc as service_grpc,
)

from receivers import Certificates
from test_clients import Daemon, value

NATIVE = "aggregation: { native_histograms: { enabled: true } }\n"
DELTA = 1
CUMULATIVE = 2


class Received:
    """Every point taken, by sink (the `x-sink` header) and then by
    (metric, attributes, end time in ms)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.points = {}
        self.resources = {}
        self.calls = {}

    def call_number(self, sink):
        with self.lock:
            self.calls[sink] = self.calls.get(sink, 0) + 1
            return self.calls[sink]

    def take(self, sink, request):
        with self.lock:
            for rm in request.resource_metrics:
                self.resources[sink] = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        data = getattr(metric, kind)
                        temporality = getattr(data, "aggregation_temporality", None)
                        for p in data.data_points:
                            attrs = frozenset(
                                (kv.key, kv.value.string_value) for kv in p.attributes
                            )
                            key = (metric.name, attrs, p.time_unix_nano // 1_000_000)
                            self.points.setdefault(sink, {})[key] = (kind, temporality, p)

    def get(self, sink, key):
        with self.lock:
            return self.points.get(sink, {}).get(key)


class ScriptedCollector(service_grpc.MetricsServiceServicer):
    """The first call of the `delta` sink is UNAVAILABLE; its second takes
    everything but answers one point rejected."""

    def __init__(self, received):
        self.received = received

    def Export(self, request, context):
        sink = dict(context.invocation_metadata()).get("x-sink", "")
        n = self.received.call_number(sink)
        if sink == "delta" and n == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        self.received.take(sink, request)
        response = service.ExportMetricsServiceResponse()
        if sink == "delta" and n == 2:
            response.partial_success.rejected_data_points = 1
            response.partial_success.error_message = "one point too many"
        return response


class HttpCollector(http.server.BaseHTTPRequestHandler):
    """POST /v1/metrics: the first answer is 503 with Retry-After: 1."""

    received = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n = self.received.call_number("http")
        if n == 1:
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        assert self.path == "/v1/metrics", self.path
        assert self.headers["Content-Type"] == "application/x-protobuf"
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = service.ExportMetricsServiceRequest()
        request.ParseFromString(body)
        self.received.take("http", request)
        out = service.ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def sink_counters(daemon, sink):
    out = {}
    for (name, labels), v in daemon.samples().items():
        labels = dict(labels)
        if name.startswith("tallyd_sink_") and labels.get("sink") == sink:
            out.setdefault(name, {})[labels.get("reason", "")] = v
    return out


def send_traffic(daemon, extra_tags=()):
    """Counters, a gauge, a set and integral timings (so sums are exact)."""
    client = DogStatsd(host=daemon.udp[0], port=daemon.udp[1], disable_telemetry=True)
    tags = list(extra_tags)
    for code, n in [("200", 7), ("500", 2)]:
        for _ in range(n):
            client.increment("tt.requests", tags=[f"code:{code}", "env:prod", *tags])
    client.gauge("tt.queue", 17.5, tags=["pool:a", *tags])
    client.set("tt.users", "alice", tags=tags)
    client.set("tt.users", "bob", tags=tags)
    for v in range(1, 201):
        client.timing("tt.latency", v % 37 + 1, tags=tags)
    client.flush()
    client.close_socket()


def send_members(daemon):
    """The two members of send_traffic's set again; True once sent."""
    client = DogStatsd(host=daemon.udp[0], port=daemon.udp[1], disable_telemetry=True)
    client.set("tt.users", "alice")
    client.set("tt.users", "bob")
    client.flush()
    client.close_socket()
    return True


def set_counts(daemon):
    """Every value `tt.users` had in a retained window of `daemon`."""
    status, body = daemon.get("/api/v1/rollups?name=tt.users&windows=300")
    assert status == 200, body
    return [s["value"] for w in json.loads(body)["windows"] for s in w["series"]]


class CollectorTests(unittest.TestCase):
    def setUp(self):
        self.received = Received()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        service_grpc.add_MetricsServiceServicer_to_server(
            ScriptedCollector(self.received), self.server
        )
        self.grpc_port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        HttpCollector.received = self.received
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HttpCollector)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.assertEqual(self.daemon.stop(), 0)
        self.server.stop(None)
        self.http.shutdown()
        self.http.server_close()

    def test_every_point_equals_the_rollup_of_its_window(self):
        grpc_url = f"http://127.0.0.1:{self.grpc_port}"
        http_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        common = "queue_config: { min_backoff: 50ms, max_backoff: 1s }"
        self.daemon = daemon = Daemon(
            NATIVE
            + "otlp_export:\n"
            + f"  - {{ endpoint: {grpc_url}, name: delta, temporality: delta,"
            + f" headers: {{ x-sink: delta }}, {common} }}\n"
            + f"  - {{ endpoint: {grpc_url}, name: cumulative, compression: none,"
            + " resource_attributes: { service.name: edge, host.name: node-a },"
            + f" headers: {{ x-sink: cumulative }}, {common} }}\n"
            + f"  - {{ endpoint: {http_url}, name: http, protocol: http/protobuf,"
            + f" temporality: delta, {common} }}\n",
            window="1s, retain: 120",
        )
        # Two bursts in two windows, so totals and window sums differ.
        for burst in [1, 2]:
            send_traffic(daemon)
            daemon.wait_for(
                lambda: value(daemon.samples(), "tt_latency_count") == 200 * burst
                and value(daemon.samples(), "tt_requests_total", code="200", env="prod")
                == 7 * burst,
                f"burst {burst} counted",
            )
        status, body = daemon.get("/api/v1/rollups?windows=120")
        self.assertEqual(status, 200)
        windows = [
            w for w in json.loads(body)["windows"] if any(s["name"].startswith("tt.") for s in w["series"])
        ]
        self.assertTrue(windows)
        last_end = max(w["end_unix_ms"] for w in windows)
        daemon.wait_for(
            lambda: all(
                self.received.get(sink, ("tt.queue", frozenset({("pool", "a")}), last_end))
                for sink in ["delta", "cumulative", "http"]
            ),
            "every sink's last window",
        )
        totals = {}
        checked = 0
        for window in sorted(windows, key=lambda w: w["end_unix_ms"]):
            end = window["end_unix_ms"]
            for s in window["series"]:
                if not s["name"].startswith("tt."):
                    continue
                attrs = frozenset(tuple(t.split(":", 1)) for t in s["tags"])
                key = (s["name"], attrs, end)
                for sink in ["delta", "http", "cumulative"]:
                    got = self.received.get(sink, key)
                    self.assertIsNotNone(got, f"{sink}: {key}")
                    kind, temporality, p = got
                    delta = sink != "cumulative"
                    if s["type"] == "counter":
                        totals[(sink, key[:2])] = totals.get((sink, key[:2]), 0) + s["value"]
                        self.assertEqual(kind, "sum")
                        self.assertEqual(temporality, DELTA if delta else CUMULATIVE)
                        want = s["value"] if delta else totals[(sink, key[:2])]
                        self.assertEqual(p.as_double, want, f"{sink}: {key}")
                    elif s["type"] == "gauge":
                        self.assertEqual((kind, p.as_double), ("gauge", s["value"]))
                    elif s["type"] == "set":
                        self.assertEqual((kind, p.as_double), ("gauge", s["unique"]))
                    else:
                        self.assertEqual(kind, "exponential_histogram")
                        buckets = sum(p.positive.bucket_counts) + sum(p.negative.bucket_counts)
                        self.assertEqual(p.count, buckets + p.zero_count)
                        self.assertEqual(p.scale, 3)
                        if delta:
                            self.assertEqual((p.count, p.sum), (s["count"], s["sum"]))
                            self.assertEqual((p.min, p.max), (s["min"], s["max"]))
                    checked += 1
        self.assertGreaterEqual(checked, 3 * 5)
        # Every window is exported, those without data too: the deltas add
        # up to the totals.
        hits = ("tt.requests", frozenset({("code", "200"), ("env", "prod")}))
        for sink in ["delta", "http"]:
            points = [
                p.as_double
                for (name, attrs, _), (_, _, p) in self.received.points[sink].items()
                if (name, attrs) == hits
            ]
            self.assertGreaterEqual(len(points), 2)
            self.assertEqual(sum(points), 14, sink)
        # Cumulative histograms end at the totals /metrics serves.
        _, _, p = self.received.get("cumulative", ("tt.latency", frozenset(), last_end))
        samples = daemon.samples()
        self.assertEqual(p.count, value(samples, "tt_latency_count"))
        self.assertEqual(p.sum, value(samples, "tt_latency_sum"))
        self.assertEqual(self.received.resources["cumulative"], {"service.name": "edge", "host.name": "node-a"})
        self.assertEqual(self.received.resources["delta"], {"service.name": "tallyd"})

        delta = sink_counters(daemon, "delta")
        self.assertGreaterEqual(delta["tallyd_sink_requests_failed_total"]["connection"], 1)
        self.assertEqual(delta["tallyd_sink_samples_dropped_total"]["rejected"], 1)
        http_sink = sink_counters(daemon, "http")
        self.assertGreaterEqual(http_sink["tallyd_sink_requests_failed_total"]["server_error"], 1)
        self.assertEqual(sum(http_sink["tallyd_sink_samples_dropped_total"].values()), 0)
        self.assertGreater(http_sink["tallyd_sink_histograms_sent_total"][""], 0)


class TlsTests(unittest.TestCase):
    def test_a_collector_requiring_client_certificates_takes_only_the_sink_with_one(self):
        dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, dir, True)
        certs = Certificates(dir)
        read = lambda name: open(certs.path(name), "rb").read()
        received = Received()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        service_grpc.add_MetricsServiceServicer_to_server(ScriptedCollector(received), server)
        credentials = grpc.ssl_server_credentials(
            [(read("server.key"), read("server.crt"))],
            root_certificates=read("ca.crt"),
            require_client_auth=True,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        self.addCleanup(server.stop, None)
        tls = f"ca_file: {certs.path('ca.crt')}, server_name: localhost"
        client = f"cert_file: {certs.path('client.crt')}, key_file: {certs.path('client.key')}"
        daemon = Daemon(
            "otlp_export:\n"
            f"  - {{ endpoint: 'https://127.0.0.1:{port}', name: good, headers: {{ x-sink: good }},"
            f" tls: {{ {tls}, {client} }} }}\n"
            f"  - {{ endpoint: 'https://127.0.0.1:{port}', name: nocert, headers: {{ x-sink: nocert }},"
            f" tls: {{ {tls} }}, queue_config: {{ max_backoff: 200ms }} }}\n"
        )
        try:
            send_traffic(daemon)
            daemon.wait_for(
                lambda: any(k[0] == "tt.latency" for k in received.points.get("good", {}))
                and sink_counters(daemon, "nocert")
                .get("tallyd_sink_requests_failed_total", {})
                .get("connection", 0)
                >= 2,
                "the good sink's points and the other's failed handshakes",
            )
            self.assertNotIn("nocert", received.points)
            nocert = sink_counters(daemon, "nocert")
            self.assertEqual(sum(nocert["tallyd_sink_samples_dropped_total"].values()), 0)
            self.assertGreater(nocert["tallyd_sink_queue_samples"][""], 0)
            self.assertEqual(sink_counters(daemon, "good")["tallyd_sink_retries_total"][""], 0)
        finally:
            self.assertEqual(daemon.stop(), 0)


class TwoTierTests(unittest.TestCase):
    def test_a_host_tallyd_through_an_aggregator_gives_the_direct_rollups(self):
        grpc_listen = ', grpc: "127.0.0.1:0"'
        with contextlib.ExitStack() as stack:

            def daemon(*args, **kwargs):
                d = Daemon(*args, **kwargs)
                stack.callback(lambda: self.assertEqual(d.stop(), 0))
                return d

            cumulative = daemon(listen=grpc_listen, window="200ms, retain: 300")
            delta = daemon(listen=grpc_listen, window="200ms, retain: 300")
            direct = daemon()
            host = daemon(
                "otlp_export:\n"
                f"  - {{ endpoint: 'http://{cumulative.grpc}', name: cumulative,"
                " resource_attributes: { host: node-a } }\n"
                f"  - {{ endpoint: 'http://{delta.grpc}', name: delta, temporality: delta,"
                " resource_attributes: { host: node-a } }\n"
            )
            send_traffic(host)
            send_traffic(direct, extra_tags=["host:node-a"])

            def pairs(aggregator):
                a, d = aggregator.samples(), direct.samples()
                out = []
                for code in ["200", "500"]:
                    labels = {"code": code, "env": "prod", "host": "node-a"}
                    out.append(
                        (value(a, "tt_requests_total", **labels), value(d, "tt_requests_total", **labels))
                    )
                out.append(
                    (value(a, "tt_queue", pool="a", host="node-a"), value(d, "tt_queue", pool="a", host="node-a"))
                )
                out.append(
                    (value(a, "tt_latency_count_total", host="node-a"), value(d, "tt_latency_count", host="node-a"))
                )
                out.append(
                    (value(a, "tt_latency_sum_total", host="node-a"), value(d, "tt_latency_sum", host="node-a"))
                )
                return out

            for aggregator in [cumulative, delta]:
                try:
                    aggregator.wait_for(
                        lambda: all(x is not None and x == y for x, y in pairs(aggregator)),
                        "the aggregator's rollups to match the direct ones",
                    )
                except AssertionError:
                    raise AssertionError(
                        f"{pairs(aggregator)}: {[k for k in aggregator.samples() if k[0].startswith('tt')]}"
                    ) from None
                # A set's count reaches the aggregator as a gauge, the last value
                # of each aggregator window: a host window published late can
                # land in the same aggregator window as the next (count 0), so
                # the members are sent again until a window shows them.
                aggregator.wait_for(
                    lambda: send_members(host)
                    and 2.0 in set_counts(aggregator),
                    "the set's count in an aggregator window",
                )
                # Still equal windows later: nothing is counted twice.
                flushed = value(aggregator.samples(), "tallyd_windows_flushed_total", shard="0")
                aggregator.wait_for(
                    lambda: value(aggregator.samples(), "tallyd_windows_flushed_total", shard="0")
                    >= flushed + 5,
                    "five more windows",
                )
                self.assertTrue(all(x == y for x, y in pairs(aggregator)), pairs(aggregator))
            self.assertEqual(pairs(cumulative)[0], (7, 7))
            self.assertEqual(pairs(delta)[3], (200, 200))
            for name in ["cumulative", "delta"]:
                counters = sink_counters(host, name)
                self.assertEqual(sum(counters["tallyd_sink_samples_dropped_total"].values()), 0)


if __name__ == "__main__":
    unittest.main()
