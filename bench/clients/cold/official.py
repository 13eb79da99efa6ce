"""Cold start of the official Python SDK (tensorlake==0.5.163): import, client, one get_snapshot."""
import json
import sys
import time
import warnings

warnings.simplefilter("ignore")
from tensorlake.sandbox import SandboxClient  # noqa: E402

url, namespace, sid = sys.argv[1:4]
info = SandboxClient.for_localhost(api_url=url, namespace=namespace).get_snapshot(sid)
print(json.dumps({"id": info.snapshot_id, "inProcessMs": None}), flush=True)
