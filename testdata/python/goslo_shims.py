"""Runtime shims that let oslo.messaging 8.1.4 run on CPython 3.11.

None of them changes a byte on the wire or a Redis command:

1. collections_abcs: 3.10 removed ``collections.Mapping`` and the other ABC
   aliases; 8.1.4 and its pinned dependencies still import them.
2. zmq_send_kwarg: from 6.3.0 on, oslo.messaging's own Transport passes
   ``call_monitor_timeout=`` to ``driver.send``, which ZmqDriver.send never
   accepted. The wrapper drops the keyword and calls the original unchanged.
3. redis_get_publishers: MatchmakerRedisBase.get_publishers splits the bytes
   members Redis returns with a str separator and raises TypeError on py3.
   The replacement decodes UTF-8 first and otherwise does the same.

Import this module before oslo_messaging; call ``apply()`` once.
``ACTIVE`` lists the shims that took effect.
"""
import collections
import collections.abc
import functools

ACTIVE = []


def _collections_abcs():
    names = [n for n in collections.abc.__all__ if not n.startswith("_")]
    added = False
    for name in names:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
            added = True
    if added or hasattr(collections, "Mapping"):
        ACTIVE.append("collections_abcs")


def _zmq_send_kwarg():
    try:
        from oslo_messaging._drivers import impl_zmq
    except ImportError:
        return  # releases without the zmq driver (the "modern" environment)
    original = impl_zmq.ZmqDriver.send
    if getattr(original, "_goslo_shim", False):
        ACTIVE.append("zmq_send_kwarg")
        return

    @functools.wraps(original)
    def send(self, target, ctxt, message, wait_for_reply=None, timeout=None,
             retry=None, call_monitor_timeout=None, **kwargs):
        return original(self, target, ctxt, message,
                        wait_for_reply=wait_for_reply, timeout=timeout,
                        retry=retry, **kwargs)

    send._goslo_shim = True
    impl_zmq.ZmqDriver.send = send
    ACTIVE.append("zmq_send_kwarg")


def _redis_get_publishers():
    try:
        from oslo_messaging._drivers.zmq_driver.matchmaker import \
            zmq_matchmaker_redis as mm
    except ImportError:
        return
    base = mm.MatchmakerRedisBase
    if getattr(base.get_publishers, "_goslo_shim", False):
        ACTIVE.append("redis_get_publishers")
        return

    def _text(member):
        return member.decode("utf-8") if isinstance(member, bytes) else member

    @mm.empty_list_on_error
    def get_publishers(self):
        return [tuple(_text(hostname).split(","))
                for hostname in self._smembers(mm._PUBLISHERS_KEY)]

    get_publishers._goslo_shim = True
    base.get_publishers = get_publishers
    ACTIVE.append("redis_get_publishers")


_applied = False


def apply():
    global _applied
    if _applied:
        return ACTIVE
    _applied = True
    _collections_abcs()
    _zmq_send_kwarg()
    _redis_get_publishers()
    return ACTIVE
