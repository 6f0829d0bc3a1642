"""The tagged JSON form in which values cross the Go/Python test channel.

Plain JSON null, booleans, strings, ints and arrays (lists) stand for
themselves. Everything else is an object with one "$tag" key:
  {"$float": "<repr>"}            float (keeps NaN, inf, -0.0, 1.0 vs 1)
  {"$dict": [[key, value], ...]}  dict in insertion order
  {"$tuple": [...]}               tuple
  {"$bytes": "<hex>"}             bytes
  {"$datetime": [Y, M, D, h, m, s, us, tz-name or null]}
  {"$date": [Y, M, D]}
  {"$uuid": "<32 hex>"}
  {"$set": [...]}, {"$frozenset": [...]}
  {"$count": [start, step]}
  {"$ip": "<address>"}
  {"$xmlrpc": [Y, M, D, h, m, s]}
  {"$ext": [code, "<hex>"]}       msgpack ExtType
The Go side is interop/tagged.go.
"""
import datetime
import itertools
import uuid
import xmlrpc.client

import msgpack

try:
    import netaddr
except ImportError:  # pragma: no cover
    netaddr = None


def _count_args(c):
    r = repr(c)  # count(5) or count(5, 2)
    inner = r[r.index("(") + 1:-1].split(", ")
    start = eval(inner[0])
    step = eval(inner[1]) if len(inner) > 1 else 1
    return start, step


def to_tagged(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"$float": repr(v)}
    if isinstance(v, list):
        return [to_tagged(x) for x in v]
    if isinstance(v, tuple):
        return {"$tuple": [to_tagged(x) for x in v]}
    if isinstance(v, dict):
        return {"$dict": [[to_tagged(k), to_tagged(x)] for k, x in v.items()]}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, datetime.datetime):
        tz = None
        if v.tzinfo is not None:  # the name msgpackutils writes
            tz = (getattr(v.tzinfo, "zone", None) or getattr(v.tzinfo, "key", None)
                  or v.tzinfo.tzname(None))
        return {"$datetime": [v.year, v.month, v.day, v.hour, v.minute,
                              v.second, v.microsecond, tz]}
    if isinstance(v, datetime.date):
        return {"$date": [v.year, v.month, v.day]}
    if isinstance(v, uuid.UUID):
        return {"$uuid": v.hex}
    if isinstance(v, frozenset):
        return {"$frozenset": [to_tagged(x) for x in v]}
    if isinstance(v, set):
        return {"$set": [to_tagged(x) for x in v]}
    if isinstance(v, itertools.count):
        s, st = _count_args(v)
        return {"$count": [to_tagged(s), to_tagged(st)]}
    if netaddr is not None and isinstance(v, netaddr.IPAddress):
        return {"$ip": str(v)}
    if isinstance(v, xmlrpc.client.DateTime):
        t = v.timetuple()
        return {"$xmlrpc": list(t[:6])}
    if isinstance(v, msgpack.ExtType):
        return {"$ext": [v.code, v.data.hex()]}
    raise TypeError("no tagged form for %r" % type(v))


def from_tagged(v):
    if isinstance(v, list):
        return [from_tagged(x) for x in v]
    if not isinstance(v, dict):
        return v
    if not v:
        return {}
    if len(v) != 1:
        raise ValueError("tagged object must have one key: %r" % v)
    (tag, x), = v.items()
    if tag == "$float":
        return float(x)
    if tag == "$dict":
        return {from_tagged(k): from_tagged(y) for k, y in x}
    if tag == "$tuple":
        return tuple(from_tagged(y) for y in x)
    if tag == "$bytes":
        return bytes.fromhex(x)
    if tag == "$datetime":
        tz = None
        d = datetime.datetime(*x[:7])
        if x[7] is None:
            return d
        try:
            import pytz
        except ImportError:  # newer stacks use zoneinfo
            import zoneinfo
            return d.replace(tzinfo=zoneinfo.ZoneInfo(x[7]))
        return pytz.timezone(x[7]).localize(d)
    if tag == "$date":
        return datetime.date(*x)
    if tag == "$uuid":
        return uuid.UUID(hex=x)
    if tag == "$set":
        return set(from_tagged(y) for y in x)
    if tag == "$frozenset":
        return frozenset(from_tagged(y) for y in x)
    if tag == "$count":
        return itertools.count(from_tagged(x[0]), from_tagged(x[1]))
    if tag == "$ip":
        return netaddr.IPAddress(x)
    if tag == "$xmlrpc":
        return xmlrpc.client.DateTime(datetime.datetime(*x))
    if tag == "$ext":
        return msgpack.ExtType(x[0], bytes.fromhex(x[1]))
    raise ValueError("unknown tag %r" % tag)
