"""Prints what the interop environment holds; exits non-zero when it is not
what the suite needs. Run by tox as the environment's smoke test."""
import json
import sys

import goslo_shims

goslo_shims.apply()
import oslo_messaging  # noqa: E402
from importlib import metadata  # noqa: E402

env = sys.argv[1] if len(sys.argv) > 1 else ""
info = {
    "env": env,
    "python": sys.version.split()[0],
    "oslo.messaging": metadata.version("oslo.messaging"),
    "oslo.serialization": metadata.version("oslo.serialization"),
    "msgpack": metadata.version("msgpack"),
    "shims": goslo_shims.ACTIVE,
}
print(json.dumps(info))
if env == "zmq814":
    want = {"collections_abcs", "zmq_send_kwarg", "redis_get_publishers"}
    if info["oslo.messaging"] != "8.1.4" or not want <= set(info["shims"]):
        sys.exit("zmq814 environment is not oslo.messaging 8.1.4 with all shims")
