"""Peer operations for envelope/: the codecs, the oslo envelope, remote errors.

Everything goes through the installed oslo.serialization and oslo.messaging,
never through a reimplementation.
"""
import builtins
import sys

from oslo_serialization import jsonutils
from oslo_serialization import msgpackutils

import oslo_messaging
from oslo_messaging._drivers import common as drv_common

from peer_ops import op
from tagged import from_tagged, to_tagged


@op("json_dumps")
def json_dumps(value):
    return {"hex": jsonutils.dump_as_bytes(from_tagged(value)).hex()}


@op("json_loads")
def json_loads(hex):
    return {"value": to_tagged(jsonutils.loads(bytes.fromhex(hex)))}


@op("msgpack_dumps")
def msgpack_dumps(value):
    return {"hex": msgpackutils.dumps(from_tagged(value)).hex()}


@op("msgpack_loads")
def msgpack_loads(hex):
    return {"value": to_tagged(msgpackutils.loads(bytes.fromhex(hex)))}


@op("envelope_serialize")
def envelope_serialize(value):
    # What an AMQP driver hands to the transport: a dict with a JSON string.
    return {"value": to_tagged(drv_common.serialize_msg(from_tagged(value)))}


@op("envelope_deserialize")
def envelope_deserialize(value):
    return {"value": to_tagged(drv_common.deserialize_msg(from_tagged(value)))}


def _exception_class(module, name):
    if module in ("builtins", "exceptions"):
        return getattr(builtins, name)
    __import__(module)
    return getattr(sys.modules[module], name)


@op("serialize_exception")
def serialize_exception(module, cls, args=(), kwargs=None):
    """Raise module.cls(*args, **kwargs) and serialize it as a server would."""
    klass = _exception_class(module, cls)
    try:
        raise klass(*from_tagged(list(args)), **from_tagged(kwargs or {}))
    except Exception:
        return {"failure": drv_common.serialize_remote_exception(sys.exc_info())}


@op("deserialize_exception")
def deserialize_exception(failure, allowed=()):
    """What a Python caller gets for a failure string."""
    exc = drv_common.deserialize_remote_exception(failure, list(allowed))
    mro = [c.__name__ for c in type(exc).__mro__]
    out = {
        "class": type(exc).__name__,
        "module": type(exc).__module__,
        "mro": mro,
        "str": str(exc),
        "args": to_tagged(list(exc.args)),
        "is_remote_error": isinstance(exc, oslo_messaging.RemoteError),
    }
    if isinstance(exc, oslo_messaging.RemoteError):
        out["exc_type"] = exc.exc_type
        out["value"] = exc.value
    return out
