"""The Graphite sink into a receiver nobody here wrote: Debian's carbon-cache.

Metrics sent with the Python `datadog` and `statsd` clients are rolled up by
tallyd, pushed to carbon-cache over its plaintext port, and read back out of
the whisper files carbon wrote (found and read with carbon's and whisper's own
code, carbon_read.py); every stored point must equal tallyd's rollup of that
window, as its JSON API and `/metrics` serve it, under Etsy StatsD's names.

Run by scripts/test.sh with the path of the tallyd binary in TALLYD_BIN.
"""

import contextlib
import json
import time
import unittest
from decimal import Decimal

from datadog.dogstatsd import DogStatsd
import statsd

from receivers import Carbon, wait_for
from test_clients import Daemon, value
from test_native_histograms import latencies

SECTION = {
    "counter": "counters",
    "gauge": "gauges",
    "set": "sets",
    "timer": "timers",
    "histogram": "timers",
    "distribution": "timers",
}


def percentile_stat(q):
    """Etsy StatsD's name for quantile `q`: upper_99 for 0.99, upper_99_9 for 0.999."""
    percent = f"{Decimal(q) * 100:f}"
    if "." in percent:
        percent = percent.rstrip("0").rstrip(".")
    return "upper_" + percent.replace(".", "_")


def stats_of(series):
    """{stat suffix: value} of one series of a JSON rollup window, as Etsy
    StatsD names them."""
    kind = series["type"]
    if kind == "counter":
        return {".count": series["value"], ".rate": series["rate"]}
    if kind == "gauge":
        return {"": series["value"]}
    if kind == "set":
        return {".count": series["unique"]}
    out = {
        ".count": series["count"],
        ".count_ps": series["rate"],
        ".sum": series["sum"],
        ".mean": series["mean"],
        ".upper": series["max"],
        ".lower": series["min"],
        ".std": series["stddev"],
    }
    for q, v in series["quantiles"].items():
        out["." + percentile_stat(q)] = v
    return out


def tags_of(series):
    return "".join(f";{k}={v}" for k, v in sorted(t.split(":", 1) for t in series["tags"]))


def graphite_block(carbon, name, prefix, *extra):
    keys = "".join(f"\n    {k}" for k in extra)
    return (
        f"  - address: {carbon.address}\n    name: {name}\n    prefix: {prefix!r}"
        f"\n    queue_config: {{ max_backoff: 500ms }}{keys}\n"
    )


def sink_counters(daemon, sink):
    """{metric name: {reason or '': value}} of one sink's own metrics."""
    out = {}
    for (name, labels), v in daemon.samples().items():
        labels = dict(labels)
        if name.startswith("tallyd_sink_") and labels.get("sink") == sink:
            out.setdefault(name, {})[labels.get("reason", "")] = v
    return out


def total_stored(carbon, name, since):
    """The sum of every point stored under `name` since `since`."""
    stored = carbon.read([name], since, int(time.time()) + 2)[name]
    return sum(stored["points"].values()) if stored else 0


class CarbonTests(unittest.TestCase):
    def setUp(self):
        self.carbon = Carbon()
        self.daemons = []
        self.since = int(time.time()) - 2

    def tearDown(self):
        for daemon in self.daemons:
            if daemon.proc.poll() is None:
                self.assertEqual(daemon.stop(), 0)
        self.carbon.stop()

    def daemon(self, config, **kwargs):
        daemon = Daemon(config, **kwargs)
        self.daemons.append(daemon)
        return daemon

    def test_what_carbon_stores_equals_what_tallyd_rolled_up(self):
        self.carbon.start()
        daemon = self.daemon(
            "graphite:\n"
            + graphite_block(self.carbon, "tagged", "stats.${TALLYD_TEST_HOST}")
            + graphite_block(self.carbon, "plain", "plain", "tags: none"),
            window="1s, retain: 120",
            env={"TALLYD_TEST_HOST": "node-a"},
        )
        client = DogStatsd(host=daemon.udp[0], port=daemon.udp[1], disable_telemetry=True)
        for code, n in [("200", 7), ("500", 2)]:
            for _ in range(n):
                client.increment("gr.requests", tags=[f"code:{code}", "env:prod"])
        client.gauge("gr.queue", 17.5, tags=["pool:a"])
        client.set("gr.users", "alice")
        client.set("gr.users", "bob")
        values = latencies(3, 200)
        for v in values:
            client.timing("gr.latency", v, tags=["route:/api/x"])
        client.histogram("gr.size", 1.25)
        client.distribution("gr.bytes", 512)
        client.flush()
        client.close_socket()
        with contextlib.closing(statsd.StatsClient(*daemon.udp)) as plain:
            plain.incr("gr odd/name", 3)
        daemon.wait_for(
            lambda: value(daemon.samples(), "gr_latency_count", route="/api/x") == len(values)
            and value(daemon.samples(), "gr_odd_name_total") == 3,
            "every sample counted",
        )
        status, body = daemon.get("/api/v1/rollups?windows=120")
        self.assertEqual(status, 200)
        windows = [
            w
            for w in json.loads(body)["windows"]
            if any(s["name"].startswith("gr") for s in w["series"])
        ]
        self.assertTrue(windows)

        # What each window should have stored, by Graphite name.
        expected = {}
        for window in windows:
            at = str(window["end_unix_ms"] // 1000)
            for series in window["series"]:
                if not series["name"].startswith("gr"):
                    continue
                name = series["name"].replace(" ", "_").replace("/", "-")
                base = f"stats.node-a.{SECTION[series['type']]}.{name}"
                for stat, v in stats_of(series).items():
                    expected.setdefault(base + stat + tags_of(series), {})[at] = v
        self.assertGreaterEqual(len(expected), 2 * 2 + 1 + 1 + 3 * 10 + 2)
        ends = [w["end_unix_ms"] // 1000 for w in windows]
        last, since, until = str(max(ends)), min(ends) - 2, max(ends) + 2

        def stored_everything():
            stored = self.carbon.read(expected, since, until)
            return all(
                s is not None and all(at in s["points"] for at in points)
                for s, points in zip(stored.values(), expected.values())
            )

        wait_for(stored_everything, "carbon to store every window")
        stored = self.carbon.read(expected, since, until)
        for name, points in expected.items():
            for at, v in points.items():
                self.assertEqual(stored[name]["points"][at], v, f"{name} at {at}")
            self.assertEqual(";" in name, stored[name]["path"].startswith("_tagged/"), name)
        self.assertIn(
            "stats.node-a.timers.gr.latency.upper_99;route=/api/x", expected, list(expected)
        )

        # The per-window counts add up to the totals /metrics serves.
        samples = daemon.samples()
        for code in ["200", "500"]:
            name = f"stats.node-a.counters.gr.requests.count;code={code};env=prod"
            self.assertEqual(
                sum(stored[name]["points"].values()),
                value(samples, "gr_requests_total", code=code, env="prod"),
            )

        # Without tags: the two gr.requests series share one path, so the
        # first is stored and the other counted.
        plain = self.carbon.read(
            ["plain.counters.gr.requests.count", "plain.gauges.gr.queue"], since, until
        )
        self.assertEqual(plain["plain.gauges.gr.queue"]["points"][last], 17.5)
        self.assertFalse(plain["plain.gauges.gr.queue"]["path"].startswith("_tagged"))
        self.assertTrue(set(plain["plain.counters.gr.requests.count"]["points"].values()) & {7, 2})
        plain_counters = sink_counters(daemon, "plain")
        self.assertGreaterEqual(
            plain_counters["tallyd_sink_samples_dropped_total"]["name_conflict"], 1
        )
        tagged = sink_counters(daemon, "tagged")
        self.assertEqual(tagged["tallyd_sink_samples_dropped_total"]["name_conflict"], 0)
        self.assertGreater(tagged["tallyd_sink_samples_sent_total"][""], len(expected))

        # tallyd's own metrics travel too.
        own = self.carbon.read(["stats.node-a.tallyd.sink_requests_total;sink=tagged"], since, until)
        self.assertIsNotNone(own["stats.node-a.tallyd.sink_requests_total;sink=tagged"])

    def test_an_outage_of_carbon_loses_no_window(self):
        # tallyd starts pushing before carbon listens.
        daemon = self.daemon(
            "graphite:\n" + graphite_block(self.carbon, "test", "stats"),
            window="1s, retain: 120",
        )
        sent = 0
        with contextlib.closing(statsd.StatsClient(*daemon.udp)) as client:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                client.incr("outage.hits")
                sent += 1
                time.sleep(0.05)
        daemon.wait_for(
            lambda: value(daemon.samples(), "outage_hits_total") == sent
            and sink_counters(daemon, "test")["tallyd_sink_retries_total"][""] >= 2,
            "every hit counted while the sink retries",
        )
        self.carbon.start()
        daemon.wait_for(
            lambda: sink_counters(daemon, "test")["tallyd_sink_queue_samples"][""] == 0,
            "the queue to drain",
        )
        wait_for(
            lambda: total_stored(self.carbon, "stats.counters.outage.hits.count", self.since)
            == sent,
            "carbon to store every window",
        )
        counters = sink_counters(daemon, "test")
        self.assertGreaterEqual(counters["tallyd_sink_requests_failed_total"]["connection"], 2)
        self.assertEqual(sum(counters["tallyd_sink_samples_dropped_total"].values()), 0)

    def test_the_open_window_is_sent_at_shutdown(self):
        self.carbon.start()
        daemon = self.daemon(
            "graphite:\n" + graphite_block(self.carbon, "test", "stats"), window="60s"
        )
        with contextlib.closing(statsd.StatsClient(*daemon.udp)) as client:
            for _ in range(5):
                client.incr("shutdown.hits", 2)
        daemon.wait_for(
            lambda: value(daemon.samples(), "tallyd_lines_received_total", transport="udp") == 5,
            "the lines received",
        )
        self.assertEqual(daemon.stop(), 0)
        wait_for(
            lambda: total_stored(self.carbon, "stats.counters.shutdown.hits.count", self.since)
            == 10,
            "carbon to store the last window",
        )


if __name__ == "__main__":
    unittest.main()
