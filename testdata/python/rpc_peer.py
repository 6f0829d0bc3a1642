"""A real oslo.messaging 8.1.4 RPC server or client on the zmq driver, for
goslo's interop tests. Usage:

  rpc_peer.py server URL TOPIC SERVER [NOTIFY_TOPIC]
                                        serves the endpoint below; prints
                                        {"ready": ...}, then one JSON line per
                                        request; stops on "quit" or EOF; with
                                        NOTIFY_TOPIC, also a notification
                                        listener as in "listen"
  rpc_peer.py listen URL TOPIC          a notification listener (info, error)
                                        printing one JSON line per notification
  rpc_peer.py notify URL                reads {"publisher_id", "priority",
                                        "event_type", "payload", "context"}
  rpc_peer.py client URL                reads JSON lines
                                        {"op": "call"|"cast", "topic", "server",
                                         "fanout", "method", "args", "context",
                                         "timeout", "version", "retries",
                                         "raw"} (with "raw": true the answer
                                         adds "raw": the reply payloads
                                         received, in hex)
                                        or a notification {"op": "notify",
                                         "topic", "publisher_id", "priority",
                                         "event_type", "payload", "context"}
                                        and prints {"ok": ..., "result"|"error"}

URL is a transport URL; its query sets [oslo_messaging_zmq] options
(e.g. zmq+redis://127.0.0.1:6379?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1).
"""
import datetime
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goslo_shims  # noqa: E402

goslo_shims.apply()

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402

from tagged import from_tagged, to_tagged  # noqa: E402

_out_lock = threading.Lock()


def emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def transport(url):
    conf = cfg.ConfigOpts()
    conf([], project="goslo-interop", default_config_files=[],
         default_config_dirs=[])
    return oslo_messaging.get_rpc_transport(conf, url=url), conf


class Endpoint(object):
    target = oslo_messaging.Target(version="1.3")

    def __init__(self, name):
        self.name = name

    def _seen(self, kind, method, ctxt, args):
        emit({"type": kind, "method": method, "args": to_tagged(args),
              "context": to_tagged(ctxt)})

    def echo(self, ctxt, **args):
        self._seen("call", "echo", ctxt, args)
        return args

    def context(self, ctxt):
        self._seen("call", "context", ctxt, {})
        return ctxt

    def fail(self, ctxt, message):
        self._seen("call", "fail", ctxt, {"message": message})
        raise ValueError(message)

    def sleep(self, ctxt, seconds):
        self._seen("call", "sleep", ctxt, {"seconds": seconds})
        time.sleep(seconds)
        return seconds

    def whoami(self, ctxt):
        self._seen("call", "whoami", ctxt, {})
        return self.name

    def instance(self, ctxt):
        """A dict as a nova-style endpoint returns one; goslo's interop
        test returns the same from a Go struct and compares the bytes."""
        self._seen("call", "instance", ctxt, {})
        return {"uuid": "a0e1", "name": "vm-1", "vcpus": 4, "ram_mb": 2048,
                "host": None,
                "created_at": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456),
                "tags": ["a", "b"], "metadata": {"k": "v"},
                "flavor": {"id": 7, "name": "m1.small", "disk_gb": 20},
                "zone": "nova", "count": "3", "deleted": False}


def serve(url, topic, server, notify_topic=None):
    tr, conf = transport(url)
    target = oslo_messaging.Target(topic=topic, server=server)
    srv = oslo_messaging.get_rpc_server(tr, target, [Endpoint(server)],
                                        executor="threading")
    srv.start()
    lst = None
    if notify_topic:
        ntr = oslo_messaging.get_notification_transport(conf, url=url)
        lst = oslo_messaging.get_notification_listener(
            ntr, [oslo_messaging.Target(topic=notify_topic)],
            [NotifyEndpoint()], executor="threading")
        lst.start()
    emit({"ready": {"topic": topic, "server": server, "pid": os.getpid()}})
    try:
        for line in sys.stdin:
            if line.strip() == "quit":
                break
    finally:
        if lst is not None:
            lst.stop()
            lst.wait()
        srv.stop()
        srv.wait()
        tr.cleanup()


class NotifyEndpoint(object):
    def _seen(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        emit({"priority": priority, "publisher_id": publisher_id,
              "event_type": event_type, "payload": to_tagged(payload),
              "context": to_tagged(ctxt), "metadata": to_tagged(metadata)})

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._seen("info", ctxt, publisher_id, event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._seen("error", ctxt, publisher_id, event_type, payload, metadata)


def listen(url, topic):
    tr = oslo_messaging.get_notification_transport(transport(url)[1], url=url)
    lst = oslo_messaging.get_notification_listener(
        tr, [oslo_messaging.Target(topic=topic)], [NotifyEndpoint()],
        executor="threading")
    lst.start()
    emit({"ready": {"topic": topic}})
    try:
        for line in sys.stdin:
            if line.strip() == "quit":
                break
    finally:
        lst.stop()
        lst.wait()


def notify(url):
    tr = oslo_messaging.get_notification_transport(transport(url)[1], url=url)
    emit({"ready": {}})
    for line in sys.stdin:
        line = line.strip()
        if not line or line == "quit":
            break
        req = json.loads(line)
        n = oslo_messaging.Notifier(tr, publisher_id=req["publisher_id"],
                                    driver="messaging", topics=[req.get("topic", "notifications")])
        getattr(n, req["priority"])(from_tagged(req.get("context", {})),
                                    req["event_type"], from_tagged(req["payload"]))
        emit({"ok": True})


# The reply payloads the client received, as bytes, for requests with
# "raw": true (recorded below the zmq driver's deserializer).
_raw = []
_raw_lock = threading.Lock()


def record_raw_replies():
    from oslo_messaging._drivers.zmq_driver import zmq_socket

    def recv_loaded(self, *args, **kwargs):
        serialization = kwargs.pop(
            'serialization',
            self.conf.oslo_messaging_zmq.rpc_zmq_serialization)
        s = self.handle.recv(*args, **kwargs)
        with _raw_lock:
            _raw.append(s)
        return self._get_serializer(serialization).load_from_bytes(s)

    zmq_socket.ZmqSocket.recv_loaded = recv_loaded


def client(url):
    record_raw_replies()
    tr, conf = transport(url)
    ntr = None
    emit({"ready": {"pid": os.getpid()}})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line == "quit":
            break
        req = json.loads(line)
        if req["op"] == "notify":
            if ntr is None:
                ntr = oslo_messaging.get_notification_transport(conf, url=url)
            n = oslo_messaging.Notifier(ntr, publisher_id=req["publisher_id"],
                                        driver="messaging", topics=[req.get("topic", "notifications")])
            getattr(n, req["priority"])(from_tagged(req.get("context", {})),
                                        req["event_type"], from_tagged(req["payload"]))
            emit({"ok": True, "result": None})
            continue
        target = oslo_messaging.Target(topic=req["topic"], version=req.get("version", "1.0"))
        c = oslo_messaging.RPCClient(tr, target, timeout=req.get("timeout", 10))
        c = c.prepare(server=req.get("server"), fanout=req.get("fanout", False))
        ctxt = from_tagged(req.get("context", {}))
        args = from_tagged(req.get("args", {}))
        try:
            if req["op"] == "call":
                # "retries": how many MessagingTimeouts to retry. The 8.1.4
                # client tracks a call only after sending it, so a reply
                # that arrives first is dropped and the call times out;
                # "lost" reports how often that happened.
                lost = 0
                with _raw_lock:
                    del _raw[:]
                while True:
                    try:
                        res = c.call(ctxt, req["method"], **args)
                        break
                    except oslo_messaging.MessagingTimeout:
                        if lost >= req.get("retries", 0):
                            raise
                        lost += 1
                out = {"ok": True, "result": to_tagged(res), "lost": lost}
                if req.get("raw"):
                    with _raw_lock:
                        out["raw"] = [b.hex() for b in _raw]
                emit(out)
            else:
                c.cast(ctxt, req["method"], **args)
                emit({"ok": True, "result": None})
        except Exception as exc:
            emit({"ok": False, "error": {"class": type(exc).__name__,
                                         "module": type(exc).__module__,
                                         "message": str(exc)}})
    tr.cleanup()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        serve(*sys.argv[2:6])
    elif mode == "listen":
        listen(sys.argv[2], sys.argv[3])
    elif mode == "notify":
        notify(sys.argv[2])
    else:
        client(sys.argv[2])
