"""Remote write into receivers nobody here wrote.

Debian's Prometheus 2.42 (`--web.enable-remote-write-receiver`, native
histograms on) and VictoriaMetrics take tallyd's pushes; what they store is
read back with PromQL and compared with what tallyd's own `/metrics` serves
(parsed by `prometheus_client`) and with quantiles worked out here exactly.
Prometheus behind TLS with client certificates and basic auth (its
exporter-toolkit web config) takes the pushes of a sink with the right
certificate and password, and refuses the others, as counted.

Run by scripts/test.sh with the path of the tallyd binary in TALLYD_BIN.
"""

import contextlib
import json
import os
import socket
import tempfile
import time
import unittest

from datadog.dogstatsd import DogStatsd
import statsd

from receivers import Certificates, Prometheus, VictoriaMetrics, WebConfig, same, wait_for
from test_clients import Daemon, value
from test_native_histograms import exact_quantile, latencies

# Schema 3: a bucket is 2^(1/8) - 1 = 9.05% wide.
BUCKET_WIDTH = 2 ** (1 / 8) - 1
OUTAGE_S = 20


def sink(url, *extra):
    """A remote_write block for `url`, with `extra` keys."""
    keys = "".join(f"\n    {k}" for k in extra)
    return f"remote_write:\n  - url: {url}\n    name: test{keys}\n"


def selector(name, labels):
    """A PromQL selector matching exactly `labels` (others must be absent
    or be `host`)."""
    matchers = [f'{k}="{v}"' for k, v in sorted(labels)]
    return name + "{" + ",".join(matchers) + "}"


def sink_counters(daemon):
    """{metric name: {reason or '': value}} of the test sink's own metrics."""
    out = {}
    for (name, labels), v in daemon.samples().items():
        labels = dict(labels)
        if name.startswith("tallyd_sink_") and labels.get("sink") == "test":
            out.setdefault(name, {})[labels.get("reason", "")] = v
    return out


class PrometheusReceiverTests(unittest.TestCase):
    def setUp(self):
        self.prometheus = Prometheus(receiver=True)
        self.daemons = []

    def tearDown(self):
        for daemon in self.daemons:
            self.assertEqual(daemon.stop(), 0)
        out_of_order = self.prometheus.own_metrics().get(
            "prometheus_tsdb_out_of_order_samples_total", 0
        )
        self.prometheus.stop()
        self.assertEqual(out_of_order, 0, "Prometheus saw out-of-order samples")

    def daemon(self, config, **kwargs):
        daemon = Daemon(config, **kwargs)
        self.daemons.append(daemon)
        return daemon

    def test_what_prometheus_stores_equals_what_metrics_serves(self):
        daemon = self.daemon(
            'external_labels: { host: "${TALLYD_TEST_HOST}" }\n'
            + sink(self.prometheus.write_url),
            env={"TALLYD_TEST_HOST": "node-a"},
        )
        client = DogStatsd(host=daemon.udp[0], port=daemon.udp[1], disable_telemetry=True)
        for code, n in [("200", 7), ("500", 2)]:
            for _ in range(n):
                client.increment("rw.requests", tags=[f"code:{code}", "env:prod"])
        client.gauge("rw.queue", 17.5)
        client.set("rw.users", "alice")
        client.set("rw.users", "bob")
        values = latencies(1, 200)
        for v in values:
            client.timing("rw.latency", v)
        client.flush()
        client.close_socket()
        daemon.wait_for(
            lambda: value(daemon.samples(), "rw_latency_count") == len(values)
            and value(daemon.samples(), "rw_requests_total", code="200", env="prod") == 7,
            "every sample counted",
        )

        # One scrape, and the window it shows; Prometheus must hold the
        # samples stamped with that window's end.
        samples = daemon.samples()
        end = value(samples, "tallyd_window_last_end_timestamp_seconds")
        wait_for(
            lambda: (self.prometheus.query('timestamp(rw_queue{host="node-a"})') or 0) >= end,
            "the window pushed",
        )
        compared = 0
        for (name, labels), scraped in samples.items():
            if name.startswith("tallyd_"):
                continue
            promql = selector(name, labels | {("host", "node-a")})
            stored = self.prometheus.query(promql, at=end)
            self.assertIsNotNone(stored, promql)
            self.assertTrue(same(stored, scraped), f"{promql}: stored {stored}, /metrics {scraped}")
            compared += 1
        # 2 counters, gauge, set, 3 quantiles + _sum + _count.
        self.assertGreaterEqual(compared, 9)
        # Each window's exact quantile, stamped with its end.
        status, body = daemon.get("/api/v1/rollups?name=rw.latency&windows=60")
        self.assertEqual(status, 200)
        windows = [w for w in json.loads(body)["windows"] if w["series"]]
        self.assertEqual(sum(w["series"][0]["count"] for w in windows), len(values))
        for window in windows:
            at = window["end_unix_ms"] / 1000
            self.assertEqual(
                self.prometheus.query('rw_latency{quantile="0.99",host="node-a"}', at=at),
                window["series"][0]["quantiles"]["0.99"],
            )
        # tallyd's own metrics travel too.
        sent = self.prometheus.query('tallyd_sink_samples_sent_total{sink="test"}')
        self.assertIsNotNone(sent)
        # The external label is pushed, never served.
        self.assertFalse(any("host" in dict(labels) for _, labels in samples))

    def test_an_outage_of_the_receiver_loses_no_window(self):
        daemon = self.daemon(
            sink(self.prometheus.write_url, "queue_config: { capacity: 200000, max_backoff: 1s }")
        )
        with contextlib.closing(statsd.StatsClient(*daemon.udp)) as client:
            client.gauge("outage.gauge", 3)
        wait_for(
            lambda: (self.prometheus.query("count_over_time(outage_gauge[1m])") or 0) >= 5,
            "the first windows",
        )
        self.prometheus.halt()
        # The outage itself: windows close meanwhile and must wait in the queue.
        time.sleep(OUTAGE_S)
        self.prometheus.start()
        down_from = time.time()

        def caught_up():
            last = value(daemon.samples(), "tallyd_window_last_end_timestamp_seconds")
            stored = self.prometheus.query("timestamp(outage_gauge)") or 0
            return last > down_from and stored >= last

        wait_for(caught_up, "the queue sent after the restart")
        last = self.prometheus.query("timestamp(outage_gauge)")
        result = self.prometheus.result("outage_gauge[10m]", at=last)
        stamps = [float(t) for t, _ in result[0]["values"]]
        steps = {round(b - a, 3) for a, b in zip(stamps, stamps[1:])}
        self.assertEqual(steps, {0.2}, "every 200ms window is stored once")
        self.assertGreater(stamps[-1] - stamps[0], OUTAGE_S)
        counters = sink_counters(daemon)
        self.assertGreater(counters["tallyd_sink_retries_total"][""], 0)
        self.assertEqual(sum(counters["tallyd_sink_samples_dropped_total"].values()), 0)

    def test_a_2_0_sink_falls_back_to_1_0_on_a_receiver_that_stores_nothing_of_it(self):
        daemon = self.daemon(
            sink(self.prometheus.write_url, "protobuf_message: io.prometheus.write.v2.Request")
        )
        with contextlib.closing(statsd.StatsClient(*daemon.udp)) as client:
            client.gauge("fallback.gauge", 11)
        wait_for(
            lambda: self.prometheus.query("fallback_gauge") == 11,
            "the gauge stored through 1.0",
        )
        counters = sink_counters(daemon)
        self.assertEqual(sum(counters["tallyd_sink_samples_dropped_total"].values()), 0)

    def test_a_fleet_merges_its_native_histograms_and_counters_in_prometheus(self):
        native = (
            "aggregation: { native_histograms: { enabled: true } }\n"
            'external_labels: { host: "${TALLYD_TEST_HOST}" }\n'
            + sink(self.prometheus.write_url, "send_native_histograms: true")
        )
        hosts = ["a", "b", "c"]
        fleet = [self.daemon(native, env={"TALLYD_TEST_HOST": h}) for h in hosts]
        parts = [latencies(seed, n) for seed, n in [(2, 300), (3, 500), (4, 700)]]
        for daemon, part in zip(fleet, parts):
            with contextlib.closing(statsd.StatsClient(*daemon.udp)) as client:
                for v in part:
                    client.timing("fleet.latency", v)
                    client.incr("fleet.requests")
        everything = [v for part in parts for v in part]
        total = len(everything)
        wait_for(
            lambda: self.prometheus.query("histogram_count(sum(fleet_latency))") == total
            and self.prometheus.query("sum(fleet_requests_total)") == total,
            "every host's samples",
        )
        self.assertAlmostEqual(
            self.prometheus.query("histogram_sum(sum(fleet_latency))"), sum(everything), places=3
        )
        for promql, values in [
            ('histogram_quantile(0.99, fleet_latency{host="a"})', parts[0]),
            ("histogram_quantile(0.99, sum(fleet_latency))", everything),
            ("histogram_quantile(0.5, sum(fleet_latency))", everything),
        ]:
            q = float(promql.split("(")[1].split(",")[0])
            exact = exact_quantile(values, q)
            answer = self.prometheus.query(promql)
            self.assertIsNotNone(answer, promql)
            self.assertLessEqual(abs(answer - exact) / exact, BUCKET_WIDTH, promql)


class TlsReceiverTests(unittest.TestCase):
    def test_tls_with_a_client_certificate_and_basic_auth_and_what_fails_without_them(self):
        with tempfile.TemporaryDirectory() as dir:
            certificates = Certificates(dir)
            prometheus = Prometheus(
                receiver=True, web_config=WebConfig(certificates, "tallyd", "s3cret")
            )
            password = os.path.join(dir, "password")
            with open(password, "w") as f:
                f.write("s3cret\n")
            # The certificate names localhost only: server_name makes 127.0.0.1 pass.
            tls = (
                f"tls_config: {{ ca_file: {certificates.path('ca.crt')}, server_name: localhost,"
                f" cert_file: {certificates.path('client.crt')},"
                f" key_file: {certificates.path('client.key')} }}"
            )
            url = prometheus.write_url
            daemon = Daemon(
                "remote_write:\n"
                f"  - {{ url: {url}, name: test, {tls},\n"
                f"      basic_auth: {{ username: tallyd, password_file: {password} }} }}\n"
                f"  - {{ url: {url}, name: no_cert,"
                f" tls_config: {{ ca_file: {certificates.path('ca.crt')}, server_name: localhost }},"
                "      basic_auth: { username: tallyd, password: s3cret },"
                "      queue_config: { min_backoff: 10ms, max_backoff: 100ms } }\n"
                f"  - {{ url: {url}, name: wrong_password, {tls},\n"
                "      basic_auth: { username: tallyd, password: guess } }\n"
            )
            try:
                with contextlib.closing(statsd.StatsClient(*daemon.udp)) as client:
                    client.gauge("tls.gauge", 42)
                wait_for(
                    lambda: prometheus.query("tls_gauge") == 42,
                    "the gauge stored over TLS",
                )

                def counters(sink):
                    out = {}
                    for (name, labels), v in daemon.samples().items():
                        labels = dict(labels)
                        if labels.get("sink") == sink:
                            out[(name, labels.get("reason", ""))] = v
                    return out

                # Without a client certificate the handshake fails: retried.
                wait_for(
                    lambda: counters("no_cert")[
                        ("tallyd_sink_requests_failed_total", "connection")
                    ]
                    > 1,
                    "the certificate-less sink refused",
                )
                # A wrong password is a 401: dropped and counted, not retried.
                wait_for(
                    lambda: counters("wrong_password")[
                        ("tallyd_sink_samples_dropped_total", "rejected")
                    ]
                    > 0,
                    "the wrong password refused",
                )
                no_cert, wrong = counters("no_cert"), counters("wrong_password")
                self.assertEqual(no_cert[("tallyd_sink_samples_sent_total", "")], 0)
                self.assertEqual(wrong[("tallyd_sink_samples_sent_total", "")], 0)
                self.assertGreater(wrong[("tallyd_sink_requests_failed_total", "client_error")], 0)
                self.assertEqual(wrong[("tallyd_sink_retries_total", "")], 0)
                good = counters("test")
                self.assertEqual(
                    sum(v for (n, _), v in good.items() if n == "tallyd_sink_samples_dropped_total"),
                    0,
                )
            finally:
                self.assertEqual(daemon.stop(), 0)
                prometheus.stop()


class VictoriaMetricsTests(unittest.TestCase):
    def test_503s_are_retried_until_every_series_is_stored(self):
        vm = VictoriaMetrics("-maxConcurrentInserts=1", "-insert.maxQueueDuration=1ms")
        daemon = Daemon(
            sink(
                vm.write_url,
                "queue_config: { max_samples_per_send: 100, max_shards: 16,"
                " min_backoff: 10ms, max_backoff: 200ms }",
            ),
            window="1s",
        )
        try:
            n = 3000
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for i in range(n):
                    s.sendto(f"vm.load.g{i}:{i}|g".encode(), daemon.udp)
            daemon.wait_for(
                lambda: value(daemon.samples(), "tallyd_window_series") >= n, "every gauge"
            )
            # Gauges are pushed every window: concurrent requests meet the
            # one insert slot, and some are answered 503.
            wait_for(
                lambda: sink_counters(daemon)["tallyd_sink_requests_failed_total"]["server_error"]
                > 0,
                "a 503",
            )
            wait_for(
                lambda: vm.query('count({__name__=~"vm_load_g.*"})') == n
                and vm.query('sum({__name__=~"vm_load_g.*"})') == sum(range(n)),
                "every gauge stored",
            )
            counters = sink_counters(daemon)
            self.assertGreater(counters["tallyd_sink_retries_total"][""], 0)
            self.assertEqual(sum(counters["tallyd_sink_samples_dropped_total"].values()), 0)
        finally:
            self.assertEqual(daemon.stop(), 0)
            vm.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
