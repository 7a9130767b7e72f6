"""Servers nobody here wrote, started on free loopback ports for the tests:
Debian's Prometheus (scraper and remote-write receiver, optionally behind TLS
with client certificates and basic auth), VictoriaMetrics and carbon-cache;
and the certificates such a server and its clients need, made with openssl."""

import base64
import json
import math
import os
import shutil
import socket
import ssl
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

    scheme = "http"

    def __init__(self):
        self.dir = tempfile.mkdtemp()
        self.address = f"127.0.0.1:{free_port()}"
        self.proc = None
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        # What the test's own requests need: TLS settings, headers.
        self.context = None
        self.headers = {}

    def open(self, path):
        """GET `path` on the server, as the test's client."""
        request = urllib.request.Request(
            f"{self.scheme}://{self.address}{path}", headers=self.headers
        )
        return urllib.request.urlopen(request, context=self.context)

    def command(self):
        raise NotImplementedError

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log)
        wait_for(self.ready, f"{self.command()[0]} to be ready")

    def ready(self):
        try:
            with self.open(self.ready_path) as r:
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
        with self.open(f"{path}?" + urllib.parse.urlencode(params)) as response:
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
        with self.open("/metrics") as response:
            text = response.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[s.name] = out.get(s.name, 0.0) + s.value
        return out


class Prometheus(Server):
    """Debian's Prometheus with native histograms: scraping `targets` (job
    `tallyd`) and `jobs` (scrape_config objects), and taking remote writes
    when `receiver`."""

    ready_path = "/-/ready"

    def __init__(self, targets=(), receiver=False, web_config=None, jobs=()):
        super().__init__()
        self.receiver = receiver
        self.web_config = web_config
        if web_config is not None:
            self.scheme = "https"
            self.context, self.headers = web_config.client()
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global: { scrape_interval: 1s, evaluation_interval: 1s }\n")
            jobs = list(jobs)
            if targets:
                jobs.append({"job_name": "tallyd", "static_configs": [{"targets": list(targets)}]})
            if jobs:
                # YAML reads JSON: each job as a scrape_config object.
                f.write(f"scrape_configs: {json.dumps(jobs)}\n")
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
        if self.web_config is not None:
            command.append(f"--web.config.file={self.web_config.path}")
        return command

    @property
    def write_url(self):
        return f"{self.scheme}://{self.address}/api/v1/write"


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
        self.open("/internal/force_flush").close()
        return super().query(promql, at)


class Carbon:
    """Debian's carbon-cache on a free loopback port (plaintext protocol),
    storing one point per second for a day in its own whisper folder, read
    back by carbon_read.py with carbon's and whisper's own code."""

    def __init__(self):
        self.dir = tempfile.mkdtemp()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.whisper_dir = os.path.join(self.dir, "whisper")
        with open(os.path.join(self.dir, "carbon.conf"), "w") as conf:
            conf.write(
                "[cache]\n"
                f"STORAGE_DIR = {self.dir}\n"
                f"LOCAL_DATA_DIR = {self.whisper_dir}\n"
                f"WHISPER_DIR = {self.whisper_dir}\n"
                f"LOG_DIR = {self.dir}\n"
                f"PID_DIR = {self.dir}\n"
                "USER =\n"
                # Tags are stored either way; this only turns off updates of
                # graphite-web's tag database, which is not running.
                "ENABLE_TAGS = False\n"
                "MAX_CACHE_SIZE = inf\n"
                "MAX_UPDATES_PER_SECOND = inf\n"
                "MAX_CREATES_PER_MINUTE = inf\n"
                "LINE_RECEIVER_INTERFACE = 127.0.0.1\n"
                f"LINE_RECEIVER_PORT = {self.port}\n"
                "ENABLE_UDP_LISTENER = False\n"
                "PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n"
                f"PICKLE_RECEIVER_PORT = {free_port()}\n"
                "CACHE_QUERY_INTERFACE = 127.0.0.1\n"
                f"CACHE_QUERY_PORT = {free_port()}\n"
                "LOG_UPDATES = False\n"
            )
        with open(os.path.join(self.dir, "storage-schemas.conf"), "w") as conf:
            conf.write("[everything]\npattern = .*\nretentions = 1s:1d\n")
        self.log = open(os.path.join(self.dir, "carbon.log"), "w")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["carbon-cache", f"--config={self.dir}/carbon.conf", "--nodaemon", "start"],
            stdout=self.log,
            stderr=self.log,
        )
        wait_for(self.ready, "carbon-cache to listen")

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("carbon-cache exited")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(DEADLINE_S)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def read(self, names, since, until):
        """{name: None or {"path": ..., "points": {ts: value}}}, as stored."""
        request = {"dir": self.whisper_dir, "names": list(names), "from": since, "until": until}
        reader = os.path.join(os.path.dirname(__file__), "carbon_read.py")
        done = subprocess.run(
            ["/usr/bin/python3", reader],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Certificates:
    """A CA, a server certificate for DNS name `localhost` only, and a client
    certificate, as PEM files in `dir`."""

    def __init__(self, dir):
        self.dir = dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl(
            "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=tallyd test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=dir,
        )
        for name, usage, san in [
            ("server", "serverAuth", "subjectAltName=DNS:localhost"),
            ("client", "clientAuth", None),
        ]:
            openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                    "-subj", f"/CN=tallyd test {name}", cwd=dir)
            with open(os.path.join(dir, f"{name}.ext"), "w") as f:
                f.write(f"extendedKeyUsage={usage}\n" + (f"{san}\n" if san else ""))
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", f"{name}.crt", "-days", "1",
                    "-extfile", f"{name}.ext", cwd=dir)

    def path(self, name):
        return os.path.join(self.dir, name)


class WebConfig:
    """An exporter-toolkit web config: TLS with client certificates required
    (signed by `certificates`' CA) and, unless `user` is None, basic auth for
    `user`:`password`."""

    def __init__(self, certificates, user=None, password=None):
        import bcrypt

        self.certificates = certificates
        self.user, self.password = user, password
        self.path = certificates.path("web.yml")
        with open(self.path, "w") as f:
            f.write(
                "tls_server_config:\n"
                f"  cert_file: {certificates.path('server.crt')}\n"
                f"  key_file: {certificates.path('server.key')}\n"
                "  client_auth_type: RequireAndVerifyClientCert\n"
                f"  client_ca_file: {certificates.path('ca.crt')}\n"
            )
            if user is not None:
                hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
                f.write(f"basic_auth_users:\n  {user}: '{hashed}'\n")

    def client(self):
        """The TLS context and headers of an authorised client."""
        context = ssl.create_default_context(cafile=self.certificates.path("ca.crt"))
        # The server's certificate names localhost; the test dials 127.0.0.1.
        context.check_hostname = False
        context.load_cert_chain(
            self.certificates.path("client.crt"), self.certificates.path("client.key")
        )
        if self.user is None:
            return context, {}
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return context, {"Authorization": f"Basic {token}"}


def same(a, b):
    """Equal, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b
