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
