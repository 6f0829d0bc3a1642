"""An oslo.messaging 8.1.4 RPC client on the zmq driver that counts the
replies it loses, for goslo's interop suite (interop/lostreply_test.go).
Usage:

  lost_reply_peer.py URL eventlet|threads
        eventlet: eventlet.monkey_patch() first, as OpenStack services run
        (the driver then uses green threads and eventlet's zmq); threads:
        plain threads. Prints {"ready": ...}, then reads JSON lines
        {"topic", "server", "calls", "timeout"}: makes that many sequential
        calls of echo(i=<n>) on one client, each with that timeout, and
        prints {"calls", "lost", "errors", "seconds", "p50_ms", "p99_ms"}
        where lost counts MessagingTimeouts (8.1.4 tracks a CALL only
        after sending it: a reply its receiver reads first is dropped).

URL is a transport URL; its query sets [oslo_messaging_zmq] options.
"""
import sys

MODE = sys.argv[2] if len(sys.argv) > 2 else ""
if MODE == "eventlet":
    import eventlet
    eventlet.monkey_patch()
elif MODE != "threads":
    sys.exit("usage: lost_reply_peer.py URL eventlet|threads")

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goslo_shims  # noqa: E402

goslo_shims.apply()

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    url = sys.argv[1]
    conf = cfg.ConfigOpts()
    conf([], project="goslo-interop", default_config_files=[],
         default_config_dirs=[])
    tr = oslo_messaging.get_rpc_transport(conf, url=url)
    patched = MODE == "eventlet" and eventlet.patcher.is_monkey_patched("thread")
    emit({"ready": {"pid": os.getpid(), "mode": MODE, "monkey_patched": patched}})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line == "quit":
            break
        req = json.loads(line)
        target = oslo_messaging.Target(topic=req["topic"], server=req["server"], version="1.0")
        c = oslo_messaging.RPCClient(tr, target, timeout=req["timeout"])
        lost = errors = 0
        took = []
        start = time.monotonic()
        for i in range(req["calls"]):
            t0 = time.monotonic()
            try:
                res = c.call({}, "echo", i=i)
                if res != {"i": i}:
                    errors += 1
            except oslo_messaging.MessagingTimeout:
                lost += 1
            except Exception:  # noqa: BLE001 - counted, reported as errors
                errors += 1
            took.append(time.monotonic() - t0)
            if (i + 1) % 500 == 0:
                sys.stderr.write("lost_reply_peer: %d calls, %d lost, %.1f s\n"
                                 % (i + 1, lost, time.monotonic() - start))
                sys.stderr.flush()
        took.sort()
        emit({"calls": req["calls"], "lost": lost, "errors": errors,
              "seconds": round(time.monotonic() - start, 3),
              "p50_ms": round(1000 * took[len(took) // 2], 3),
              "p99_ms": round(1000 * took[len(took) * 99 // 100], 3)})
    tr.cleanup()


if __name__ == "__main__":
    main()
