"""Resident memory per series: starts tallyd (one shard, an hour-long window,
no GPU), sends 200,000 DogStatsD lines of type `c` or `ms` over UDP, either
all to one series (`same`) or each to its own (`distinct`), and prints the
growth of VmRSS. The per-series cost is the `distinct` growth minus the
`same` growth (the buffers that traffic alone takes), over 200,000. Lines are
sent at about 200,000 a second, slower than a shard creates series, so both
runs buffer alike.

Usage: python3 benches/memory_per_series.py target/release/tallyd c|ms same|distinct
Names are `app.requests.latency.N` with three tags (`env`, `service`, `host`).
"""
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
binary = sys.argv[1]
kind = sys.argv[2]  # c or ms
distinct = sys.argv[3] == "distinct"
cfg = tempfile.NamedTemporaryFile(suffix=".yaml", delete=False).name
open(cfg, "w").write('listen:\n  udp: ["127.0.0.1:0"]\n  udp_threads: 1\n  http: "127.0.0.1:0"\nwindow: { interval: 1h }\nshards: 1\ngpu: { mode: off }\nlogging: { format: json }\n')
p = subprocess.Popen([binary, "--config", cfg], stderr=subprocess.PIPE, text=True)
ready = None
for line in p.stderr:
    ev = json.loads(line)
    if ev.get("message") == "ready":
        ready = ev; break
udp = ready["udp"].split(",")[0]; host, port = udp.rsplit(":", 1)
http = ready["http"]
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) * 1024
def series():
    body = urllib.request.urlopen(f"http://{http}/metrics").read().decode()
    return sum(float(m) for m in re.findall(r'^tallyd_series\{[^}]*\} (\S+)', body, re.M))
def received():
    body = urllib.request.urlopen(f"http://{http}/metrics").read().decode()
    return sum(float(m) for m in re.findall(r'^tallyd_lines_received_total\{[^}]*\} (\S+)', body, re.M))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
time.sleep(0.5)
base = rss()
N = 200_000
sent = 0
for start in range(0, N, 40):
    lines = "\n".join(f"app.requests.latency.{i if distinct else 0}:{i % 97}|{kind}|#env:prod,service:checkout,host:web-{i % 50 if distinct else 0}" for i in range(start, min(start + 40, N)))
    s.sendto(lines.encode(), (host, int(port)))
    sent += 1
    # About 200,000 lines/s: a shard creates new series faster than that, so
    # no backlog of batches builds up in its queue (the pool keeps every batch
    # it ever grew to, which would count buffered lines as series memory).
    if sent % 10 == 0: time.sleep(0.002)
deadline = time.time() + 30
while received() < N and time.time() < deadline: time.sleep(0.2)
# Series are counted at window close; read RSS now (series are held in the shard map).
time.sleep(0.5)
after = rss()
print(f"{kind} {sys.argv[3]}: lines received {received():.0f} of {N}; RSS {base/2**20:.1f} MiB -> {after/2**20:.1f} MiB; {(after-base)/N:.0f} bytes per series")
p.terminate(); p.wait()
