"""A Python oslo.messaging peer that goslo's Go tests drive over stdin/stdout.

Protocol: one JSON object per line in, one per line out.
  in:  {"id": N, "op": "<name>", ...arguments}
  out: {"id": N, "ok": true, "result": ...}
   or  {"id": N, "ok": false, "error": {"type": "<class>", "message": "..."}}
Values that JSON cannot carry travel in the tagged form of tagged.py.
The first line written is {"ready": {...environment...}}.

Operation modules register themselves with peer_ops.op; this file imports
them all. Run it with a tox environment's interpreter:
  .tox/zmq814/bin/python testdata/python/peer.py
"""
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import goslo_shims  # noqa: E402

goslo_shims.apply()

import peer_ops  # noqa: E402
import ops_codec  # noqa: E402,F401
import ops_compat  # noqa: E402,F401
import ops_matchmaker  # noqa: E402,F401


def main():
    out = sys.stdout
    out.write(json.dumps({"ready": peer_ops.environment()}) + "\n")
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line == "quit":
            break
        req = json.loads(line)
        rid = req.pop("id", None)
        name = req.pop("op", "")
        fn = peer_ops.OPS.get(name)
        try:
            if fn is None:
                raise KeyError("unknown op %r" % name)
            resp = {"id": rid, "ok": True, "result": fn(**req)}
        except Exception as exc:  # reported to the Go side, never fatal
            resp = {"id": rid, "ok": False,
                    "error": {"type": type(exc).__name__,
                              "module": type(exc).__module__,
                              "message": str(exc),
                              "tb": traceback.format_exc()}}
        out.write(json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
