"""Registry of peer operations, and the environment report."""
import sys
from importlib import metadata

import goslo_shims

OPS = {}


def op(name):
    def register(fn):
        OPS[name] = fn
        return fn
    return register


def has_zmq_driver():
    try:
        from oslo_messaging._drivers import impl_zmq  # noqa: F401
    except ImportError:
        return False
    return True


def environment():
    return {
        "python": sys.version.split()[0],
        "oslo.messaging": metadata.version("oslo.messaging"),
        "oslo.serialization": metadata.version("oslo.serialization"),
        "oslo.config": metadata.version("oslo.config"),
        "msgpack": metadata.version("msgpack"),
        "shims": list(goslo_shims.ACTIVE),
        "zmq_driver": has_zmq_driver(),
    }


@op("env")
def env():
    return environment()


@op("echo")
def echo(**kwargs):
    return kwargs


@op("shim_probe")
def shim_probe():
    """Checks that the shims act, beyond being listed."""
    import collections
    import inspect
    out = {"collections_mapping": hasattr(collections, "Mapping"),
           "send_accepts_call_monitor_timeout": False,
           "get_publishers_decodes": False}
    try:
        from oslo_messaging._drivers import impl_zmq
        from oslo_messaging._drivers.zmq_driver.matchmaker import \
            zmq_matchmaker_redis as mm
    except ImportError:
        return out
    sig = inspect.signature(impl_zmq.ZmqDriver.send, follow_wrapped=False)
    out["send_accepts_call_monitor_timeout"] = "call_monitor_timeout" in sig.parameters

    class FakeRedis(mm.MatchmakerRedisBase):
        # Only the abstract storage is faked: get_publishers itself runs.
        def __init__(self):
            pass

        def _sadd(self, key, value, expire):
            pass

        def _srem(self, key, value):
            pass

        def _smembers(self, key):
            return [b"127.0.0.1:1,127.0.0.1:2"]

        def _ttl(self, key):
            return 300

        def _get_hosts_by_key(self, key):
            return []

    try:
        got = FakeRedis().get_publishers()
        out["get_publishers_decodes"] = got == [("127.0.0.1:1", "127.0.0.1:2")]
    except TypeError:
        pass
    return out
