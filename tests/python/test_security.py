"""tallyd behind an exporter-toolkit web config, tried by clients nobody here
wrote.

- Debian's Prometheus scrapes /metrics over TLS with a client certificate and
  basic auth (target up, values read back with PromQL); a job without
  credentials gets 401, one with a certificate from another CA fails its
  handshake; tallyd counts both.
- A reload re-reads the web config: a new password is in force at once, a
  broken file keeps the old one. POST /-/reload is behind the same auth.
- grpcio (a client generated from tallyd's proto) and the OpenTelemetry SDK's
  OTLP exporter push over mutual TLS; a channel without a client certificate
  is refused.
- `tallyd healthcheck` probes /healthz over TLS with a client certificate.

The CA and certificates are made by openssl at test time
(receivers.Certificates). Run by scripts/test.sh with TALLYD_BIN set.
"""

import contextlib
import os
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import statsd

from receivers import Certificates, Prometheus, WebConfig, wait_for
from test_clients import TALLYD, Daemon, value
from test_transports import generated_ingest_modules


def certificates_in(parent, name):
    """A separate CA and its certificates, in folder `name` of `parent`."""
    path = os.path.join(parent, name)
    os.mkdir(path)
    return Certificates(path)


def status_of(url, context, headers=None, method="GET"):
    """The HTTP status of a request, or the error that stopped it."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, context=context) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


class ScrapeTests(unittest.TestCase):
    def test_prometheus_scrapes_over_tls_with_a_client_certificate_and_basic_auth(self):
        with tempfile.TemporaryDirectory() as dir:
            certificates = Certificates(dir)
            stranger = certificates_in(dir, "other-ca")
            web = WebConfig(certificates, "prometheus", "scrape-s3cret")
            daemon = Daemon(f"web: {{ config_file: {web.path} }}\n", client=web.client())
            prometheus = None
            try:
                with contextlib.closing(statsd.StatsClient(*daemon.udp)) as client:
                    client.incr("secure.hits", 7)
                daemon.wait_for(
                    lambda: value(daemon.samples(), "secure_hits_total") == 7, "the counter"
                )
                # The certificate names localhost only: server_name makes 127.0.0.1 pass.
                tls = {
                    "ca_file": certificates.path("ca.crt"),
                    "server_name": "localhost",
                    "cert_file": certificates.path("client.crt"),
                    "key_file": certificates.path("client.key"),
                }
                auth = {"username": "prometheus", "password": "scrape-s3cret"}
                target = {"scheme": "https", "static_configs": [{"targets": [daemon.http]}]}
                prometheus = Prometheus(
                    jobs=[
                        {**target, "job_name": "tallyd", "tls_config": tls, "basic_auth": auth},
                        {**target, "job_name": "no_credentials", "tls_config": tls},
                        {
                            **target,
                            "job_name": "wrong_certificate",
                            "tls_config": {
                                **tls,
                                "cert_file": stranger.path("client.crt"),
                                "key_file": stranger.path("client.key"),
                            },
                            "basic_auth": auth,
                        },
                    ]
                )

                def targets():
                    active = prometheus.get_json("/api/v1/targets", {})["data"]["activeTargets"]
                    return {t["labels"]["job"]: t for t in active}

                wait_for(
                    lambda: len(targets()) == 3
                    and all(t["health"] != "unknown" for t in targets().values()),
                    "every target scraped once",
                )
                wait_for(
                    lambda: prometheus.query('secure_hits_total{job="tallyd"}') == 7,
                    "the counter in Prometheus",
                )
                seen = targets()
                self.assertEqual(seen["tallyd"]["health"], "up", seen["tallyd"]["lastError"])
                self.assertEqual(prometheus.query('up{job="tallyd"}'), 1)
                self.assertEqual(seen["no_credentials"]["health"], "down")
                self.assertIn("401", seen["no_credentials"]["lastError"])
                self.assertEqual(seen["wrong_certificate"]["health"], "down")
                self.assertIn("tls", seen["wrong_certificate"]["lastError"].lower())
                self.assertEqual(prometheus.query('up{job="wrong_certificate"}'), 0)

                s = daemon.samples()
                self.assertGreater(
                    value(s, "tallyd_http_requests_refused_total", reason="unauthorized"), 0
                )
                self.assertGreater(
                    value(s, "tallyd_tls_handshakes_failed_total", listener="http"), 0
                )
            finally:
                if prometheus is not None:
                    prometheus.stop()
                self.assertEqual(daemon.stop(), 0)

    def test_a_reload_puts_a_new_password_in_force_and_a_broken_file_keeps_the_old(self):
        with tempfile.TemporaryDirectory() as dir:
            certificates = Certificates(dir)
            web = WebConfig(certificates, "ops", "first")
            daemon = Daemon(
                f"web: {{ config_file: {web.path}, enable_lifecycle: true }}\n",
                client=web.client(),
            )
            try:
                context, first = web.client()
                url = f"https://{daemon.http}"
                self.assertEqual(status_of(f"{url}/-/reload", context, method="POST"), 401)
                self.assertEqual(status_of(f"{url}/metrics", context), 401)
                self.assertEqual(status_of(f"{url}/healthz", context), 200)
                # Rotate the password: the file is rewritten, then reloaded.
                second = WebConfig(certificates, "ops", "second").client()[1]
                self.assertEqual(status_of(f"{url}/-/reload", context, first, "POST"), 200)
                self.assertEqual(status_of(f"{url}/metrics", context, first), 401)
                self.assertEqual(status_of(f"{url}/metrics", context, second), 200)
                # A broken file is refused; the second password stays in force.
                with open(web.path, "w") as f:
                    f.write("basic_auth_users: { ops: not-a-bcrypt-hash }\n")
                self.assertEqual(status_of(f"{url}/-/reload", context, second, "POST"), 400)
                self.assertEqual(status_of(f"{url}/metrics", context, second), 200)
                daemon.auth_headers = second
                self.assertEqual(
                    value(daemon.samples(), "tallyd_config_last_reload_success"), 0
                )
            finally:
                self.assertEqual(daemon.stop(), 0)


def channel_credentials(certificates, with_client_certificate=True):
    import grpc

    def read(name):
        with open(certificates.path(name), "rb") as f:
            return f.read()

    if not with_client_certificate:
        return grpc.ssl_channel_credentials(root_certificates=read("ca.crt"))
    return grpc.ssl_channel_credentials(
        root_certificates=read("ca.crt"),
        private_key=read("client.key"),
        certificate_chain=read("client.crt"),
    )


class GrpcTlsTests(unittest.TestCase):
    def test_grpcio_and_the_otlp_exporter_push_over_mutual_tls(self):
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        messages, services = generated_ingest_modules()
        with tempfile.TemporaryDirectory() as dir:
            certificates = Certificates(dir)
            # gRPC uses the TLS settings alone: basic auth guards HTTP only.
            web = WebConfig(certificates)
            daemon = Daemon(
                f"web: {{ config_file: {web.path} }}\n",
                listen=', grpc: "127.0.0.1:0"',
                client=web.client(),
            )
            provider = None
            try:
                # The server certificate names localhost: dial it by that name.
                endpoint = "localhost:" + daemon.grpc.rsplit(":", 1)[1]
                batch = messages.Batch(
                    metrics=[messages.Metric(name="tls.hits", type=messages.COUNTER, values=[2, 3])]
                )
                with grpc.secure_channel(endpoint, channel_credentials(certificates)) as channel:
                    summary = services.IngestStub(channel).PushBatch(batch, timeout=10)
                    self.assertEqual(summary.accepted, 2)
                anonymous = channel_credentials(certificates, with_client_certificate=False)
                with grpc.secure_channel(endpoint, anonymous) as channel:
                    with self.assertRaises(grpc.RpcError) as refused:
                        services.IngestStub(channel).PushBatch(batch, timeout=10)
                    self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAVAILABLE)

                exporter = OTLPMetricExporter(
                    endpoint=endpoint, credentials=channel_credentials(certificates)
                )
                reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
                provider = MeterProvider(metric_readers=[reader])
                provider.get_meter("tests").create_counter("tls.orders").add(5)
                self.assertTrue(provider.force_flush())

                def ready():
                    s = daemon.samples()
                    return (
                        value(s, "tls_hits_total") == 5
                        and any(
                            name == "tls_orders_total" and v == 5 for (name, _), v in s.items()
                        )
                    )

                daemon.wait_for(ready, "both pushes over TLS")
                self.assertGreater(
                    value(daemon.samples(), "tallyd_tls_handshakes_failed_total", listener="grpc"),
                    0,
                )
            finally:
                if provider is not None:
                    provider.shutdown()
                self.assertEqual(daemon.stop(), 0)


class HealthcheckTests(unittest.TestCase):
    def test_healthcheck_probes_over_tls_with_a_client_certificate(self):
        with tempfile.TemporaryDirectory() as dir:
            certificates = Certificates(dir)
            web = WebConfig(certificates, "ops", "pw")
            daemon = Daemon(f"web: {{ config_file: {web.path} }}\n", client=web.client())
            try:

                def healthcheck(*flags):
                    return subprocess.run(
                        [TALLYD, "healthcheck", "--addr", daemon.http, *flags],
                        capture_output=True,
                        text=True,
                        timeout=30,
                    )

                tls = ["--tls", "--ca-file", certificates.path("ca.crt"), "--server-name", "localhost"]
                client = ["--cert-file", certificates.path("client.crt"),
                          "--key-file", certificates.path("client.key")]
                healthy = healthcheck(*tls, *client)
                self.assertEqual(healthy.returncode, 0, healthy.stderr)
                # Without a client certificate the handshake is refused.
                self.assertEqual(healthcheck(*tls).returncode, 1)
                # The certificate names localhost, not 127.0.0.1.
                wrong_name = healthcheck("--tls", "--ca-file", certificates.path("ca.crt"), *client)
                self.assertEqual(wrong_name.returncode, 1)
                self.assertIn("certificate", wrong_name.stderr.lower())
                # Plain text to a TLS port is no answer.
                self.assertEqual(healthcheck().returncode, 1)
                self.assertEqual(healthcheck("--tls", "--insecure-skip-verify", *client).returncode, 0)
            finally:
                self.assertEqual(daemon.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
