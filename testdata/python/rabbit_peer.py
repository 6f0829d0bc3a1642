"""A real oslo.messaging 18.3.1 peer on the rabbit driver, for goslo's
interop tests (tox environment rabbit1831). One role per process:

  rabbit_peer.py server   --url URL --topic T --server S[,S2…] [--exchange X]
  rabbit_peer.py client   --url URL
  rabbit_peer.py notifier --url URL
  rabbit_peer.py listener --url URL --topic T[,T2…] [--exchange X]
                          [--priorities info,error] [--pool P]
                          [--allow-requeue] [--name N]

Common flags: --opt group.name=value (repeatable; DEFAULT.control_exchange,
oslo_messaging_rabbit.rabbit_quorum_queue …) and --config-file F (INI
passed through). Both go through the *global* cfg.CONF (spec §1: a private
ConfigOpts breaks every call and cast of 18.3.x), read when the driver
registers its options.

Output, one JSON line each:
  first         {"ready": {"role", "pid", "oslo.messaging", "kombu", "amqp", "python", …}}
  server        {"event": "request", "server", "endpoint", "method", "args", "context"}
                per request handled (before the reply), and
                {"event": "slow_done", …} when slow() returns
  listener      {"event": "notification", "listener", "priority", "publisher_id",
                 "event_type", "payload", "context", "metadata", "result"}
                ("result": "handled" or "requeue")
  client/notifier/listener/server answers to stdin requests:
                {"id": N, "ok": true, "result": …, "elapsed_ms": …}
                {"id": N, "ok": false, "error": {"class", "module", "message",
                 "exc_type"? (RemoteError), "value"? (RemoteError)}, "elapsed_ms"}

Requests (stdin, one JSON object per line; "quit" or EOF stops the role):
  client    {"id", "op": "call"|"cast"|"fanout", "topic", "method",
             "args" (tagged), "context" (tagged dict), "context_kind":
             "dict"|"request_context", "server", "timeout",
             "call_monitor_timeout", "version", "namespace", "exchange",
             "retry", "at_least_once"}
            Each request runs in its own thread (calls may overlap).
  notifier  {"id", "op": "notify", "priority", "event_type", "payload",
             "context", "context_kind", "publisher_id", "driver":
             "messaging"|"messagingv2", "topics": [...]}
  listener  {"id", "op": "requeue", "count": N, "event_type"?}: the next N
            notifications (of that event type) are answered REQUEUE
            (only takes effect with --allow-requeue)
  any       {"id", "op": "ping"}

Values that JSON cannot carry travel in the tagged form of tagged.py
(answers and events always use it). In requests a plain JSON object is a
dict unless it is exactly one "$tag" object (then it is tagged.py's form),
so Go tests may pass ordinary maps.
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from importlib import metadata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from oslo_config import cfg  # noqa: E402
from oslo_context import context as oslo_context  # noqa: E402
import oslo_messaging  # noqa: E402

from tagged import from_tagged, to_tagged  # noqa: E402

CONF = cfg.CONF
_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def configure(opts, config_files):
    """Loads --opt values (as an INI file) and --config-file into cfg.CONF."""
    sections = {}
    for o in opts:
        key, sep, value = o.partition("=")
        group, dot, name = key.rpartition(".")
        if not sep or not dot or not name:
            raise SystemExit("--opt wants group.name=value, got %r" % o)
        sections.setdefault(group, []).append((name, value))
    files = list(config_files)
    if sections:
        fd, path = tempfile.mkstemp(prefix="rabbit_peer_", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            for group, items in sections.items():
                f.write("[%s]\n" % group)
                for name, value in items:
                    f.write("%s = %s\n" % (name, value))
        files.append(path)
    try:
        CONF([], project="goslo-interop", default_config_files=files,
             default_config_dirs=[])
    finally:
        if sections:
            os.unlink(files[-1])  # parsed: cfg.CONF keeps the values


def from_wire(v):
    """tagged.py's from_tagged, except that an object other than a single
    "$tag" one is a plain dict."""
    if isinstance(v, list):
        return [from_wire(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)).startswith("$"):
            return from_tagged(v)
        return {k: from_wire(x) for k, x in v.items()}
    return v


def error_of(exc):
    err = {"class": type(exc).__name__, "module": type(exc).__module__,
           "message": str(exc)}
    if isinstance(exc, oslo_messaging.RemoteError):
        err["exc_type"] = exc.exc_type
        err["value"] = exc.value
    return err


def make_context(req):
    ctxt = from_wire(req.get("context", {})) or {}
    if req.get("context_kind", "dict") == "request_context":
        return oslo_context.RequestContext.from_dict(ctxt)
    return ctxt


def environment(role):
    def v(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    return {"role": role, "pid": os.getpid(),
            "python": sys.version.split()[0],
            "oslo.messaging": v("oslo.messaging"), "kombu": v("kombu"),
            "amqp": v("amqp"), "oslo.config": v("oslo.config"),
            "uses_global_conf": True}


def serve_stdin(handlers):
    """Reads requests until quit/EOF; each runs in its own thread."""
    threads = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line == "quit":
            break
        req = json.loads(line)
        op = req.get("op")
        fn = handlers.get(op)
        if op == "ping":
            fn = lambda r: "pong"  # noqa: E731
        th = threading.Thread(target=run_request, args=(fn, req, op), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join(120)


def run_request(fn, req, op):
    start = time.monotonic()
    rid = req.get("id")
    try:
        if fn is None:
            raise KeyError("unknown op %r" % op)
        res = fn(req)
        emit({"id": rid, "ok": True, "result": to_tagged(res),
              "elapsed_ms": int((time.monotonic() - start) * 1000)})
    except Exception as exc:  # reported to the Go side, never fatal
        emit({"id": rid, "ok": False, "error": error_of(exc),
              "elapsed_ms": int((time.monotonic() - start) * 1000)})


# ---- RPC server ---------------------------------------------------------

class RpcEndpoint(object):
    """Target version 1.3, no namespace (the vectors' RpcEndpoint)."""
    target = oslo_messaging.Target(version="1.3")

    def __init__(self, server):
        self.server = server

    def _seen(self, method, ctxt, args):
        emit({"event": "request", "server": self.server,
              "endpoint": type(self).__name__, "method": method,
              "args": to_tagged(args), "context": to_tagged(ctxt)})

    def echo(self, ctxt, **args):
        self._seen("echo", ctxt, args)
        return args

    def context(self, ctxt):
        self._seen("context", ctxt, {})
        return ctxt

    def boom(self, ctxt, message="kaboom"):
        self._seen("boom", ctxt, {"message": message})
        raise ValueError(message)

    def slow(self, ctxt, seconds):
        self._seen("slow", ctxt, {"seconds": seconds})
        time.sleep(seconds)
        emit({"event": "slow_done", "server": self.server, "seconds": seconds})
        return seconds

    def whoami(self, ctxt):
        self._seen("whoami", ctxt, {})
        return self.server

    def cast_me(self, ctxt, **args):
        self._seen("cast_me", ctxt, args)

    def fanout_me(self, ctxt, **args):
        self._seen("fanout_me", ctxt, args)


class NsEndpoint(RpcEndpoint):
    """Namespace "ns", version 2.1 (the vectors' NsEndpoint)."""
    target = oslo_messaging.Target(namespace="ns", version="2.1")

    def ns_ping(self, ctxt, **args):
        self._seen("ns_ping", ctxt, args)
        return {"pong": args, "server": self.server}


def role_server(a):
    tr = oslo_messaging.get_rpc_transport(CONF, url=a.url)
    servers = []
    for name in a.server.split(","):
        target = oslo_messaging.Target(topic=a.topic, server=name,
                                       exchange=a.exchange)
        srv = oslo_messaging.get_rpc_server(
            tr, target, [RpcEndpoint(name), NsEndpoint(name)],
            executor="threading")
        srv.start()
        servers.append(srv)
    emit({"ready": dict(environment("server"), topic=a.topic,
                        servers=a.server.split(","))})
    try:
        serve_stdin({})
    finally:
        for srv in servers:
            srv.stop()
        for srv in servers:
            srv.wait()
        tr.cleanup()


# ---- RPC client ---------------------------------------------------------

def role_client(a):
    tr = oslo_messaging.get_rpc_transport(CONF, url=a.url)

    def request(req):
        target = oslo_messaging.Target(
            topic=req["topic"], version=req.get("version"),
            namespace=req.get("namespace"), exchange=req.get("exchange"))
        kw = {"timeout": req.get("timeout", 10)}
        if req.get("retry") is not None:
            kw["retry"] = req["retry"]
        if req.get("call_monitor_timeout") is not None:
            kw["call_monitor_timeout"] = req["call_monitor_timeout"]
        if req.get("at_least_once"):
            kw["transport_options"] = oslo_messaging.TransportOptions(
                at_least_once=True)
        c = oslo_messaging.get_rpc_client(tr, target, **kw)
        prep = {}
        if req.get("server"):
            prep["server"] = req["server"]
        if req["op"] == "fanout":
            prep["fanout"] = True
        if prep:
            c = c.prepare(**prep)
        ctxt = make_context(req)
        args = from_wire(req.get("args", {})) or {}
        if req["op"] == "call":
            return c.call(ctxt, req["method"], **args)
        c.cast(ctxt, req["method"], **args)
        return None

    emit({"ready": environment("client")})
    try:
        serve_stdin({"call": request, "cast": request, "fanout": request})
    finally:
        tr.cleanup()


# ---- notifier -----------------------------------------------------------

def role_notifier(a):
    tr = oslo_messaging.get_notification_transport(CONF, url=a.url)
    notifiers = {}
    lock = threading.Lock()

    def notify(req):
        key = (req.get("publisher_id", "goslo.test"),
               req.get("driver", "messagingv2"),
               tuple(req.get("topics") or ["notifications"]))
        with lock:
            n = notifiers.get(key)
            if n is None:
                n = oslo_messaging.Notifier(tr, publisher_id=key[0],
                                            driver=key[1], topics=list(key[2]))
                notifiers[key] = n
        getattr(n, req["priority"])(make_context(req), req["event_type"],
                                    from_wire(req.get("payload")))
        return None

    emit({"ready": environment("notifier")})
    try:
        serve_stdin({"notify": notify})
    finally:
        tr.cleanup()


# ---- notification listener ----------------------------------------------

def role_listener(a):
    tr = oslo_messaging.get_notification_transport(CONF, url=a.url)
    name = a.name or a.pool or "listener"
    requeue = {"count": 0, "event_type": None}
    lock = threading.Lock()

    def handler(priority):
        def method(self, ctxt, publisher_id, event_type, payload, metadata):
            result = "handled"
            with lock:
                if requeue["count"] > 0 and requeue["event_type"] in (None, event_type):
                    requeue["count"] -= 1
                    result = "requeue"
            emit({"event": "notification", "listener": name,
                  "priority": priority, "publisher_id": publisher_id,
                  "event_type": event_type, "payload": to_tagged(payload),
                  "context": to_tagged(ctxt), "metadata": to_tagged(metadata),
                  "result": result})
            if result == "requeue":
                return oslo_messaging.NotificationResult.REQUEUE
            return oslo_messaging.NotificationResult.HANDLED
        return method

    priorities = [p for p in a.priorities.split(",") if p]
    endpoint_cls = type("NotifyEndpoint", (object,),
                        {p: handler(p) for p in priorities})
    targets = [oslo_messaging.Target(topic=t, exchange=a.exchange)
               for t in a.topic.split(",")]
    lst = oslo_messaging.get_notification_listener(
        tr, targets, [endpoint_cls()], executor="threading",
        allow_requeue=a.allow_requeue, pool=a.pool)
    lst.start()

    def set_requeue(req):
        with lock:
            requeue["count"] = req.get("count", 1)
            requeue["event_type"] = req.get("event_type")
        return None

    emit({"ready": dict(environment("listener"), listener=name,
                        topics=a.topic.split(","), priorities=priorities,
                        pool=a.pool)})
    try:
        serve_stdin({"requeue": set_requeue})
    finally:
        lst.stop()
        lst.wait()
        tr.cleanup()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client", "notifier", "listener"])
    p.add_argument("--url", required=True)
    p.add_argument("--topic", default="notifications")
    p.add_argument("--server", default="srv1")
    p.add_argument("--exchange", default=None)
    p.add_argument("--priorities", default="info,error")
    p.add_argument("--pool", default=None)
    p.add_argument("--allow-requeue", action="store_true")
    p.add_argument("--name", default=None)
    p.add_argument("--opt", action="append", default=[])
    p.add_argument("--config-file", action="append", default=[])
    a = p.parse_args()
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("RABBIT_PEER_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure(a.opt, a.config_file)
    {"server": role_server, "client": role_client,
     "notifier": role_notifier, "listener": role_listener}[a.role](a)


if __name__ == "__main__":
    main()
