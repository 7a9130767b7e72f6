"""Reads points back out of carbon-cache's whisper files, finding each file
as carbon itself does (`carbon.util.TaggedSeries`: tagged names normalised,
then stored under `_tagged/` by their hash) and reading it with the `whisper`
module. Both come with Debian's graphite-carbon, for Debian's own python3, so
the tests run this file with /usr/bin/python3.

stdin: {"dir": whisper dir, "names": [...], "from": unix s, "until": unix s}
stdout: {name: null (no file) or {"path": file under dir, "points": {ts: value}}}
"""

import json
import os
import sys

import whisper
from carbon.util import TaggedSeries

request = json.load(sys.stdin)
out = {}
for name in request["names"]:
    metric = TaggedSeries.parse(name).path if ";" in name else name
    relative = TaggedSeries.encode(metric, os.sep, hash_only=True) + ".wsp"
    path = os.path.join(request["dir"], relative)
    if not os.path.exists(path):
        out[name] = None
        continue
    (start, _, step), values = whisper.fetch(path, request["from"], request["until"])
    points = {str(start + i * step): v for i, v in enumerate(values) if v is not None}
    out[name] = {"path": relative, "points": points}
json.dump(out, sys.stdout)
