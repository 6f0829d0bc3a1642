"""The real oslo-messaging-zmq-proxy of oslo.messaging 8.1.4, run exactly as
its console script runs it (oslo_messaging/_cmd/zmq_proxy.py main()), with
goslo's runtime shims and one addition for the tests: once the proxy is
built it prints {"ready": {"frontend", "backend", "publisher", "pid"}}.
Arguments are the proxy's own (-c, -u, -H, -f, -b, -p, -lp, -a, -d).
Stop it with SIGINT (it unregisters, as the reference does)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goslo_shims  # noqa: E402

goslo_shims.apply()

from oslo_config import cfg  # noqa: E402
from oslo_messaging._drivers.zmq_driver.proxy import zmq_proxy  # noqa: E402
from oslo_messaging._drivers.zmq_driver import zmq_options  # noqa: E402
from oslo_messaging.transport import TransportURL  # noqa: E402


def addr(obj, name):
    sock = getattr(obj, name, None)
    return getattr(sock, "connect_address", None) if sock is not None else None


def main():
    conf = cfg.CONF
    opt_group = cfg.OptGroup(name='zmq_proxy_opts',
                             title='ZeroMQ proxy options')
    conf.register_opts(zmq_proxy.zmq_proxy_opts, group=opt_group)
    zmq_options.register_opts(conf, TransportURL.parse(conf))
    zmq_proxy.parse_command_line_args(conf)

    reactor = zmq_proxy.ZmqProxy(conf)
    p = reactor.proxy
    pub = getattr(p, "publisher", None)
    sys.stdout.write(json.dumps({"ready": {
        "kind": p.PROXY_TYPE,
        "frontend": addr(p, "fe_router_socket"),
        "backend": addr(p, "be_router_socket"),
        "publisher": pub.host if pub is not None else None,
        "pid": os.getpid()}}) + "\n")
    sys.stdout.flush()
    try:
        while True:
            reactor.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        reactor.close()


if __name__ == "__main__":
    main()
