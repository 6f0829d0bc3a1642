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
