"""oslo.messaging 8.1.4 on the zmq driver as a benchmark peer, in the style
of oslo's simulator, for goslo's bench scripts:

  bench_peer.py server URL TOPIC SERVER     an echo server (prints {"ready"}),
                                            runs until "quit" or EOF
  bench_peer.py client URL TOPIC SERVER SECONDS
                                            sequential calls of echo for
                                            SECONDS; prints one JSON line with
                                            mode, concurrency, duration_s,
                                            drain_s, sent, received, errors,
                                            per_s, p50_us, p99_us (goslo
                                            bench's format)
  bench_peer.py cast URL TOPIC SERVER SECONDS
                                            casts of echo for SECONDS, then
                                            asks the server (bench_stats) what
                                            it got; the rate counts the drain,
                                            as goslo bench does
"""
import json
import os
import sys
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

    def echo(self, ctxt, **args):
        self.received += 1
        return args

    def bench_stats(self, ctxt):
        # what goslo bench rpc-client asks a server (cast counting)
        return {"received": self.received, "notified": 0}


def transport(url):
    conf = cfg.ConfigOpts()
    conf([], project="goslo-bench", default_config_files=[], default_config_dirs=[])
    return oslo_messaging.get_rpc_transport(conf, url=url)


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


def client(url, topic, name, seconds):
    c = oslo_messaging.RPCClient(transport(url), oslo_messaging.Target(topic=topic, server=name, version="1.0"),
                                 timeout=1)  # a lost reply (the 8.1.4 client race) costs 1 s, counted as an error
    args = {"data": "x" * 16}  # goslo bench rpc-client's default payload
    c.call({}, "echo", **args)  # warm up: connections and routes
    lat, errors, sent = [], 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        sent += 1
        try:
            c.call({"user": "bench"}, "echo", **args)
            lat.append((time.perf_counter() - t0) * 1e6)
        except Exception:
            errors += 1
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else 0.0

    print(json.dumps({"mode": "call", "concurrency": 1, "duration_s": float(seconds), "drain_s": 0.0, "sent": sent,
                      "received": len(lat), "errors": errors, "per_s": round(len(lat) / seconds, 1),
                      "p50_us": pct(0.5), "p99_us": pct(0.99)}), flush=True)


def cast(url, topic, name, seconds):
    c = oslo_messaging.RPCClient(transport(url), oslo_messaging.Target(topic=topic, server=name, version="1.0"),
                                 timeout=30)
    args = {"data": "x" * 16}

    def stats():
        return c.call({}, "bench_stats")["received"]

    before = stats()  # also warms up connections and routes
    sent, errors = 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            c.cast({"user": "bench"}, "echo", **args)
            sent += 1
        except Exception:
            errors += 1
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
    print(json.dumps({"mode": "cast", "concurrency": 1, "duration_s": float(seconds), "drain_s": round(drain, 3),
                      "sent": sent, "received": received, "errors": errors,
                      "per_s": round(received / (seconds + drain), 1), "p50_us": 0.0, "p99_us": 0.0}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:5])
    elif sys.argv[1] == "cast":
        cast(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        client(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
