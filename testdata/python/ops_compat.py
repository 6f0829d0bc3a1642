"""Peer operations for compat/: transport URLs, versions, configuration.

Everything runs the installed oslo.messaging and oslo.config."""
import io
import os
import tempfile

from oslo_config import cfg

import oslo_messaging
from oslo_messaging import _utils as msg_utils

from peer_ops import has_zmq_driver, op


def _host(h):
    return {"hostname": h.hostname, "port": h.port,
            "username": h.username, "password": h.password}


@op("url_parse")
def url_parse(url):
    u = oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), url)
    return {"transport": u.transport, "virtual_host": u.virtual_host,
            "hosts": [_host(h) for h in u.hosts],
            "query": [[k, v] for k, v in u.query.items()],
            "str": str(u)}


@op("version_compatible")
def version_compatible(imp, req):
    return msg_utils.version_is_compatible(imp, req)


def _conf_with_options():
    from oslo_messaging import transport as tr
    from oslo_messaging.rpc import client as rc
    from oslo_messaging._drivers.zmq_driver import zmq_options
    from oslo_messaging._drivers.zmq_driver.matchmaker import \
        zmq_matchmaker_redis as mm
    from oslo_messaging._drivers.zmq_driver.proxy import zmq_proxy
    conf = cfg.ConfigOpts()
    conf.register_opts(tr._transport_opts)
    conf.register_opts(rc._client_opts)
    conf.register_opts(zmq_options.zmq_opts, group="oslo_messaging_zmq")
    conf.register_opts(mm.matchmaker_redis_opts, group="matchmaker_redis")
    conf.register_opts(zmq_proxy.zmq_proxy_opts, group="zmq_proxy_opts")
    return conf, {
        "DEFAULT": [o.name for o in tr._transport_opts + rc._client_opts
                    if o.name != "rpc_backend"],
        "oslo_messaging_zmq": [o.name for o in zmq_options.zmq_opts],
        "matchmaker_redis": [o.name for o in mm.matchmaker_redis_opts],
        "zmq_proxy_opts": [o.name for o in zmq_proxy.zmq_proxy_opts],
    }


@op("config_load")
def config_load(files, url=None):
    """Load INI texts (later wins) with oslo.config and the 8.1.4 options;
    with url, read [oslo_messaging_zmq] through the driver's URL proxy."""
    import socket
    if not has_zmq_driver():
        raise RuntimeError("this oslo.messaging has no zmq driver options")
    conf, names = _conf_with_options()
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, text in enumerate(files):
            p = os.path.join(d, "f%d.conf" % i)
            with io.open(p, "w", encoding="utf-8") as f:
                f.write(text)
            paths.append(p)
        conf([], project="goslo-interop", default_config_files=paths,
             default_config_dirs=[])
        groups = {}
        zmq_group = conf.oslo_messaging_zmq
        if url is not None:
            from oslo_messaging._drivers import common as drv_common
            u = oslo_messaging.TransportURL.parse(conf, url)
            proxy = drv_common.ConfigOptsProxy(conf, u, "oslo_messaging_zmq")
            zmq_group = proxy.oslo_messaging_zmq
        for group, opts in names.items():
            g = conf if group == "DEFAULT" else (
                zmq_group if group == "oslo_messaging_zmq" else conf[group])
            groups[group] = {n: g[n] for n in opts}
    return {"hostname": socket.gethostname(), "groups": groups}
