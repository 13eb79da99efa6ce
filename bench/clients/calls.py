"""The official Python SDK (tensorlake==0.5.163) on the same workloads as calls.mjs.

    python calls.py '{"mode":"get|list","url":...,"namespace":...,"snapshotId":...,...}'

Prints one JSON line. Times are taken with time.perf_counter around the measured part only.
"""

import json
import sys
import time
import warnings

warnings.simplefilter("ignore")  # SandboxClient's DeprecationWarning

from tensorlake.sandbox import SandboxClient  # noqa: E402

args = json.loads(sys.argv[1])
client = SandboxClient.for_localhost(api_url=args["url"], namespace=args["namespace"])
result = {"impl": "official-python", "mode": args["mode"], "runtime": "python " + sys.version.split()[0]}

if args["mode"] == "get":
    sid = args["snapshotId"]
    for _ in range(args["warmup"]):
        if client.get_snapshot(sid).snapshot_id != sid:
            raise SystemExit("wrong snapshot")
    t0 = time.perf_counter()
    for _ in range(args["calls"]):
        if client.get_snapshot(sid).snapshot_id != sid:
            raise SystemExit("wrong snapshot")
    result["totalMs"] = (time.perf_counter() - t0) * 1000
    result["calls"] = args["calls"]
elif args["mode"] == "list":
    for _ in range(args["listWarmup"]):
        if len(list(client.list_snapshots())) != args["expect"]:
            raise SystemExit("wrong length")
    times = []
    for _ in range(args["lists"]):
        t0 = time.perf_counter()
        items = list(client.list_snapshots())
        times.append((time.perf_counter() - t0) * 1000)
        if len(items) != args["expect"]:
            raise SystemExit(f"listed {len(items)}, expected {args['expect']}")
    result["listMs"] = times
else:
    raise SystemExit("unknown mode")

print(json.dumps(result))
