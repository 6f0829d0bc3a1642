"""oslo.messaging as a benchmark peer, in the style of oslo's simulator, for
goslo's bench scripts: 8.1.4 on the zmq driver (.tox/zmq814) or 18.3.1 on
the rabbit driver (.tox/modern, .tox/rabbit1831), picked by the URL.

  bench_peer.py server URL TOPIC SERVER     an echo server (prints {"ready"}),
                                            runs until "quit" or EOF
  bench_peer.py client URL TOPIC SERVER SECONDS [CONCURRENCY]
                                            calls of echo for SECONDS, from
                                            CONCURRENCY threads (default 1:
                                            sequential) sharing one client;
                                            prints one JSON line with mode,
                                            concurrency, duration_s, drain_s,
                                            sent, received, errors, per_s,
                                            p50_us, p99_us (goslo bench's
                                            format)
  bench_peer.py cast URL TOPIC SERVER SECONDS [CONCURRENCY]
                                            casts of echo for SECONDS, then
                                            asks the server (bench_stats) what
                                            it got; the rate counts the drain,
                                            as goslo bench does

A rabbit:// URL builds the transport on the global cfg.CONF: 18.3.0 and
18.3.1 register the tracing options there only, and a transport on a
private ConfigOpts fails every send (rabbit-wire.md §1). The zmq path keeps
its private ConfigOpts.
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goslo_shims  # noqa: E402

goslo_shims.apply()

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402


class Echo(object):
    target = oslo_messaging.Target(version="1.0")

    def __init__(self):
        self.received = 0
        self.lock = threading.Lock()  # the threading executor runs echo on many threads

    def echo(self, ctxt, **args):
        with self.lock:
            self.received += 1
        return args

    def bench_stats(self, ctxt):
        # what goslo bench rpc-client asks a server (cast counting)
        return {"received": self.received, "notified": 0}


def is_rabbit(url):
    return url.startswith(("rabbit://", "kombu://"))


def transport(url):
    if is_rabbit(url):
        conf = cfg.CONF
        conf([], project="goslo-bench", default_config_files=[], default_config_dirs=[])
    else:
        conf = cfg.ConfigOpts()
        conf([], project="goslo-bench", default_config_files=[], default_config_dirs=[])
    return oslo_messaging.get_rpc_transport(conf, url=url)


def rpc_client(url, topic, name, timeout):
    target = oslo_messaging.Target(topic=topic, server=name, version="1.0")
    if hasattr(oslo_messaging, "get_rpc_client"):  # 14.1.0+; RPCClient() is deprecated there
        return oslo_messaging.get_rpc_client(transport(url), target, timeout=timeout)
    return oslo_messaging.RPCClient(transport(url), target, timeout=timeout)


def run_threads(n, seconds, op):
    """n threads call op() until the window ends; returns (sent, errors,
    sorted latencies in us) over all threads."""
    end = time.monotonic() + seconds
    results = [None] * n

    def worker(i):
        lat, errors, sent = [], 0, 0
        while time.monotonic() < end:
            t0 = time.perf_counter()
            sent += 1
            try:
                op()
                lat.append((time.perf_counter() - t0) * 1e6)
            except Exception:
                errors += 1
        results[i] = (sent, errors, lat)

    if n == 1:
        # Sequential: on the calling thread, where the warm-up call ran
        # (8.1.4's zmq client loses replies when its calls change thread).
        worker(0)
    else:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lat = sorted(x for r in results for x in r[2])
    return sum(r[0] for r in results), sum(r[1] for r in results), lat


def server(url, topic, name):
    srv = oslo_messaging.get_rpc_server(transport(url), oslo_messaging.Target(topic=topic, server=name),
                                        [Echo()], executor="threading")
    srv.start()
    print(json.dumps({"ready": {"pid": os.getpid()}}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    srv.stop()
    srv.wait()


def client(url, topic, name, seconds, concurrency=1):
    # zmq: a lost reply (the 8.1.4 client race) costs 1 s, counted as an
    # error; rabbit: 10 s (also the message expiration).
    c = rpc_client(url, topic, name, 10 if is_rabbit(url) else 1)
    args = {"data": "x" * 16}  # goslo bench rpc-client's default payload
    c.call({}, "echo", **args)  # warm up: connections and routes
    sent, errors, lat = run_threads(concurrency, seconds, lambda: c.call({"user": "bench"}, "echo", **args))

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else 0.0

    print(json.dumps({"mode": "call", "concurrency": concurrency, "duration_s": float(seconds), "drain_s": 0.0,
                      "sent": sent, "received": len(lat), "errors": errors, "per_s": round(len(lat) / seconds, 1),
                      "p50_us": pct(0.5), "p99_us": pct(0.99)}), flush=True)


def cast(url, topic, name, seconds, concurrency=1):
    c = rpc_client(url, topic, name, 30)
    args = {"data": "x" * 16}

    def stats():
        return c.call({}, "bench_stats")["received"]

    before = stats()  # also warms up connections and routes
    sent, errors, lat = run_threads(concurrency, seconds, lambda: c.cast({"user": "bench"}, "echo", **args))
    sent -= errors
    end = time.monotonic()
    last, last_move = -1, end
    while True:
        received = stats() - before
        now = time.monotonic()
        if received != last:
            last, last_move = received, now
        if received >= sent or now - last_move > 0.5 or now - end > 30:
            break
        time.sleep(0.005)
    drain = last_move - end
    print(json.dumps({"mode": "cast", "concurrency": concurrency, "duration_s": float(seconds),
                      "drain_s": round(drain, 3), "sent": sent, "received": received, "errors": errors,
                      "per_s": round(received / (seconds + drain), 1), "p50_us": 0.0, "p99_us": 0.0}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:5])
    else:
        fn = cast if sys.argv[1] == "cast" else client
        fn(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6]) if len(sys.argv) > 6 else 1)
