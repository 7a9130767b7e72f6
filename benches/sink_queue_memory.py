"""What a remote_write sink's queue costs in memory per queued sample.

    python3 benches/sink_queue_memory.py [GAUGES] [QUEUED]   (default 10000 500000)

Starts the release tallyd with 1 s windows and a remote_write target that
refuses connections, sends GAUGES gauges with three tags once (gauges persist,
so every window queues them again), and waits until QUEUED samples wait in the
queue. Prints the growth of tallyd's resident memory over that time divided
by the samples queued, beside tallyd_sink_queue_bytes (their encoded size)
per sample. Build first: `cargo build --release`.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

TALLYD = os.environ.get("TALLYD_BIN", "target/release/tallyd")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    gauges = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    queued = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    config.write(
        'listen: { udp: ["127.0.0.1:0"], http: "127.0.0.1:0" }\n'
        "window: { interval: 1s }\n"
        "logging: { format: json }\n"
        "remote_write:\n"
        f"  - url: http://127.0.0.1:{dead}/api/v1/write\n"
        "    name: dead\n"
        f"    queue_config: {{ capacity: {queued * 2}, max_backoff: 1s }}\n"
    )
    config.close()
    proc = subprocess.Popen(
        [TALLYD, "--config", config.name],
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "RUST_LOG"},
    )
    try:
        for line in proc.stderr:
            event = json.loads(line)
            if event.get("message") == "ready":
                http = event["http"]
                host, port = event["udp"].split(",")[0].rsplit(":", 1)
                break

        def sink():
            with urllib.request.urlopen(f"http://{http}/metrics") as r:
                text = r.read().decode()
            out = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.labels.get("sink") == "dead":
                        out[s.name] = out.get(s.name, 0) + s.value
            return out

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for i in range(0, gauges, 20):
                lines = "\n".join(
                    f"queue.bench.g{j}:{j}|g|#env:prod,pool:p{j % 7},az:a"
                    for j in range(i, min(i + 20, gauges))
                )
                udp.sendto(lines.encode(), (host, int(port)))
        while sink().get("tallyd_sink_queue_samples", 0) < gauges:
            time.sleep(0.1)
        start_rss, start = rss_kib(proc.pid), sink()
        while sink()["tallyd_sink_queue_samples"] < queued:
            time.sleep(0.5)
        end_rss, end = rss_kib(proc.pid), sink()
        samples = end["tallyd_sink_queue_samples"] - start["tallyd_sink_queue_samples"]
        encoded = end["tallyd_sink_queue_bytes"] - start["tallyd_sink_queue_bytes"]
        print(
            json.dumps(
                {
                    "queued_samples": int(end["tallyd_sink_queue_samples"]),
                    "rss_bytes_per_queued_sample": round((end_rss - start_rss) * 1024 / samples, 1),
                    "encoded_bytes_per_queued_sample": round(encoded / samples, 1),
                    "dropped": int(end.get("tallyd_sink_samples_dropped_total", 0)),
                }
            )
        )
    finally:
        proc.kill()
        proc.wait()
        os.unlink(config.name)


if __name__ == "__main__":
    main()
