"""Prints what the interop environment holds; exits non-zero when it is not
what the suite needs. Run by tox as the environment's smoke test."""
import json
import sys
from importlib import metadata

env = sys.argv[1] if len(sys.argv) > 1 else ""

# rabbit1831 runs oslo.messaging 18.3.1 unmodified: no shim is applied there.
if env != "rabbit1831":
    import goslo_shims

    goslo_shims.apply()
    shims = goslo_shims.ACTIVE
else:
    shims = []
import oslo_messaging  # noqa: E402,F401


def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


info = {
    "env": env,
    "python": sys.version.split()[0],
    "oslo.messaging": version("oslo.messaging"),
    "oslo.serialization": version("oslo.serialization"),
    "msgpack": version("msgpack"),
    "shims": shims,
}
if env == "rabbit1831":
    for name in ("kombu", "amqp", "oslo.config", "oslo.context"):
        info[name] = version(name)
print(json.dumps(info))
if env == "zmq814":
    want = {"collections_abcs", "zmq_send_kwarg", "redis_get_publishers"}
    if info["oslo.messaging"] != "8.1.4" or not want <= set(info["shims"]):
        sys.exit("zmq814 environment is not oslo.messaging 8.1.4 with all shims")
if env == "rabbit1831":
    # The versions the rabbit vectors were captured with
    # (testdata/python/constraints-oslo-18.3.1.txt).
    want = {"oslo.messaging": "18.3.1", "kombu": "5.7.0", "amqp": "5.4.2",
            "oslo.config": "10.7.0", "oslo.context": "6.5.0",
            "oslo.serialization": "5.11.0", "msgpack": "1.2.4"}
    bad = {k: (info[k], v) for k, v in want.items() if info[k] != v}
    if bad or not info["python"].startswith("3.11."):
        sys.exit("rabbit1831 environment differs (have, want): %r python %s"
                 % (bad, info["python"]))
