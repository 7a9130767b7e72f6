"""Checks the Kubernetes manifests in deploy/kubernetes against the API's own
types, as the official Python client (`kubernetes`) models them.

Each document is deserialised into its typed model (V1DaemonSet, V1Service,
V1ConfigMap, ...), which rejects wrong types and missing required fields, and
serialised back: a key of the file that does not survive the round trip is
not a field of the API (a misspelling, or a field at the wrong level) and is
reported. The config inside the ConfigMap is written out for
`tallyd check-config` (argument 1), and its web config beside it (argument 2).
Exit status 1 on any problem.
"""

import pathlib
import sys

import kubernetes
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"


def model_name(document):
    """`apps/v1` + `DaemonSet` -> `V1DaemonSet`."""
    version = document["apiVersion"].split("/")[-1]
    return version[0].upper() + version[1:] + document["kind"]


def lost_keys(original, round_trip, path=""):
    """Keys of `original` missing from `round_trip`, as dotted paths."""
    lost = []
    if isinstance(original, dict):
        for key, value in original.items():
            where = f"{path}.{key}" if path else key
            if not isinstance(round_trip, dict) or key not in round_trip:
                lost.append(where)
            else:
                lost += lost_keys(value, round_trip[key], where)
    elif isinstance(original, list) and isinstance(round_trip, list):
        for i, (a, b) in enumerate(zip(original, round_trip)):
            lost += lost_keys(a, b, f"{path}[{i}]")
    return lost


class Response:
    """What ApiClient.deserialize reads: a body in `data`."""

    def __init__(self, data):
        import json

        self.data = json.dumps(data)


def check(path, client, problems, configs):
    for document in yaml.safe_load_all(path.read_text()):
        if document is None:
            continue
        name = model_name(document)
        where = f"{path.relative_to(ROOT)}: {document['kind']} {document['metadata']['name']}"
        if not hasattr(kubernetes.client, name):
            problems.append(f"{where}: no API type {name}")
            continue
        try:
            model = client.deserialize(Response(document), name)
        except (ValueError, TypeError) as error:
            problems.append(f"{where}: {error}")
            continue
        round_trip = client.sanitize_for_serialization(model)
        for key in lost_keys(document, round_trip):
            problems.append(f"{where}: {key} is not a field of {name}")
        if document["kind"] == "ConfigMap" and "tallyd.yaml" in document.get("data", {}):
            configs.append(document["data"])


def main():
    client = kubernetes.client.ApiClient()
    problems, configs = [], []
    paths = sorted(MANIFESTS.glob("*.yaml"))
    for path in paths:
        check(path, client, problems, configs)
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in paths}
    for required in ("DaemonSet", "Service", "ConfigMap"):
        if required not in kinds:
            problems.append(f"deploy/kubernetes has no {required}")
    if len(configs) != 1:
        problems.append("exactly one ConfigMap must carry tallyd.yaml")
    else:
        for argument, key in zip(sys.argv[1:], ["tallyd.yaml", "web.yml"]):
            if key not in configs[0]:
                problems.append(f"the ConfigMap has no {key}")
            else:
                pathlib.Path(argument).write_text(configs[0][key])
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(paths)} manifests checked against kubernetes {kubernetes.__version__} models")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
