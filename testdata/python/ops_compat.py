"""Peer operations for compat/: targets and their strings, version
compatibility, transport URLs, oslo.config loading of the driver's options.

Everything runs the installed oslo.messaging and oslo.config code; nothing
here reimplements it. Operations that need the zmq driver (8.1.4 only)
raise RuntimeError("... no zmq driver ...") in an environment without it.
"""
import importlib
import os
import re
import shutil
import sys
import tempfile
import types
import unicodedata
from importlib import metadata
from unittest import mock

from oslo_config import cfg

import oslo_messaging
from oslo_messaging import _utils as msg_utils
from oslo_messaging import transport as msg_transport

from peer_ops import has_zmq_driver, op


def _require_zmq(what):
    if not has_zmq_driver():
        raise RuntimeError(
            "%s needs the zmq driver, and oslo.messaging %s has no zmq "
            "driver (run it in the zmq814 environment)"
            % (what, metadata.version("oslo.messaging")))


def _err(exc, tmpdir=None):
    msg = str(exc)
    if tmpdir:
        msg = msg.replace(tmpdir + os.sep, "")
    return {"class": type(exc).__name__, "message": msg}


# --- transport URLs --------------------------------------------------------

def _host(h):
    return {"hostname": h.hostname, "port": h.port,
            "username": h.username, "password": h.password}


@op("url_parse")
def url_parse(url):
    """TransportURL.parse: the parsed fields and str(), or the error."""
    try:
        u = oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), url)
    except Exception as exc:  # the class and message are the result
        out = _err(exc)
        out["url"] = getattr(exc, "url", None)
        return {"error": out}
    return {"transport": u.transport, "virtual_host": u.virtual_host,
            "hosts": [_host(h) for h in u.hosts],
            "query": [[k, v] for k, v in u.query.items()],
            "str": str(u)}


@op("url_format")
def url_format(transport, virtual_host=None, hosts=(), query=()):
    """str(TransportURL(...)) of fields given one by one."""
    conf = cfg.ConfigOpts()
    th = [oslo_messaging.TransportHost(hostname=h.get("hostname"),
                                       port=h.get("port"),
                                       username=h.get("username"),
                                       password=h.get("password"))
          for h in hosts]
    u = oslo_messaging.TransportURL(conf, transport, virtual_host, th,
                                    dict((k, v) for k, v in query))
    return {"str": str(u)}


# --- versions --------------------------------------------------------------

@op("version_compatible")
def version_compatible(imp, req):
    """_utils.version_is_compatible; its exceptions travel as errors."""
    return msg_utils.version_is_compatible(imp, req)


# --- targets ---------------------------------------------------------------

def _target(d):
    return oslo_messaging.Target(
        exchange=d.get("exchange"), topic=d.get("topic"),
        namespace=d.get("namespace"), version=d.get("version"),
        server=d.get("server"), fanout=d.get("fanout"),
        legacy_namespaces=d.get("legacy_namespaces"))


class _NullDriver(object):
    """A transport driver that accepts everything: only oslo's own checks
    in RPCClient and Transport run."""

    def __init__(self, conf):
        self.conf = conf

    def send(self, *args, **kwargs):
        return None

    def send_notification(self, *args, **kwargs):
        return None

    def listen(self, *args, **kwargs):
        return None

    def listen_for_notifications(self, *args, **kwargs):
        return None


@op("target_check")
def target_check(target, use):
    """Runs oslo's target checks for a use: cast, call (RPCClient), notify,
    listen, listen_notifications (Transport); returns the repr and the
    InvalidTarget raised, if any."""
    from oslo_messaging import opts as msg_opts
    conf = cfg.ConfigOpts()
    for group, group_opts in msg_opts.list_opts():
        conf.register_opts(group_opts, group=group)
    # Modern releases trace and measure RPC calls and read these options
    # (registered on the global CONF at import).
    for module, group in (("oslo_messaging._tracing.client",
                           "oslo_messaging_tracing"),
                          ("oslo_messaging._metrics.client",
                           "oslo_messaging_metrics")):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        conf.register_opts(getattr(mod, group), group=group)
    t = _target(target)
    transport = msg_transport.RPCTransport(_NullDriver(conf))
    out = {"repr": repr(t), "error": None}
    try:
        if use in ("cast", "call"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                client = oslo_messaging.RPCClient(transport, t)
            getattr(client, use)({}, "method")
        elif use == "notify":
            transport._send_notification(t, {}, {}, 1.0)
        elif use == "listen":
            transport._listen(t, 1, None)
        elif use == "listen_notifications":
            transport._listen_for_notifications([(t, "info")], None, 1, None)
        else:
            raise ValueError("unknown use %r" % use)
    except oslo_messaging.InvalidTarget as exc:
        out["error"] = _err(exc)
    return out


@op("zmq_strings")
def zmq_strings(target, host, uuid, port, priority, listener_type,
                pub, frontend, member):
    """Every string the 8.1.4 zmq driver derives, computed by its code."""
    _require_zmq("zmq_strings")
    from oslo_messaging._drivers.zmq_driver import zmq_address
    from oslo_messaging._drivers.zmq_driver.client.publishers.dealer import \
        zmq_dealer_publisher_proxy as dpp
    from oslo_messaging._drivers.zmq_driver.matchmaker import \
        zmq_matchmaker_redis as mm
    from oslo_messaging._drivers.zmq_driver.proxy import zmq_base_proxy
    from oslo_messaging._drivers.zmq_driver.server.consumers import \
        zmq_dealer_consumer as dc
    from oslo_messaging._drivers.zmq_driver.server.consumers import \
        zmq_sub_consumer as sc
    from oslo_messaging.notify import messaging as notify_messaging

    t = _target(target)
    fake = types.SimpleNamespace(
        conf=types.SimpleNamespace(
            oslo_messaging_zmq=types.SimpleNamespace(rpc_zmq_host=host),
            zmq_proxy_opts=types.SimpleNamespace(host=host)),
        target=t)
    with mock.patch("uuid.uuid4", return_value=uuid):
        client_id = dpp.DealerPublisherProxy._generate_identity(fake)
        server_id = dc.DealerConsumer._generate_identity(fake)
        sub_id = sc.SubConsumer._generate_identity(fake)
        with mock.patch.object(zmq_base_proxy.zmq_socket,
                               "ZmqFixedPortSocket",
                               side_effect=lambda *a, **k: k["identity"]):
            proxy_id = zmq_base_proxy.create_socket(fake.conf, None, 1, None)

    class FakeRedis(mm.MatchmakerRedisBase):
        def __init__(self, members=()):
            self.added, self.read, self.members = [], [], list(members)

        def _sadd(self, key, value, expire):
            self.added.append([key, value])

        def _srem(self, key, value):
            pass

        def _smembers(self, key):
            self.read.append(key)
            return list(self.members)

        def _ttl(self, key):
            return 300

        def _get_hosts_by_key(self, key):
            return []

    reg = FakeRedis()
    reg.register(t, "h:1", listener_type)
    reg.register_publisher((pub, frontend))
    look = FakeRedis()
    look.get_hosts(t, listener_type)
    look.get_hosts_fanout(t, listener_type)
    parsed = FakeRedis([member.encode()]).get_publishers()

    sent = []
    fake_transport = types.SimpleNamespace(
        _send_notification=lambda tgt, *a, **k: sent.append(tgt.topic))
    notify_messaging.MessagingDriver(None, ["notifications"],
                                     fake_transport).notify(
        {}, {}, priority, -1)

    return {
        "target_to_key": zmq_address.target_to_key(t),
        "target_key": zmq_address.target_to_key(t, listener_type),
        "topic_key": zmq_address.prefix_str(t.topic, listener_type),
        "subscribe_filter": zmq_address.target_to_subscribe_filter(t).decode(),
        "host_port": zmq_address.combine_address(host, port),
        "tcp_address": zmq_address.get_tcp_direct_address(
            zmq_address.combine_address(host, port)),
        "client_identity": client_id.decode(),
        "server_identity": server_id.decode(),
        "sub_identity": sub_id.decode(),
        "proxy_identity": proxy_id.decode(),
        "registered": [k for k, v in reg.added if v != " " and k != "PUBLISHERS"],
        "publisher_member": [v for k, v in reg.added if k == "PUBLISHERS"][0],
        "lookup_keys": look.read,
        "publishers": [list(p) for p in parsed],
        "notification_topic": sent[0],
    }


# --- configuration ---------------------------------------------------------

def _registered_conf():
    """A ConfigOpts with the 8.1.4 options registered as the code that uses
    them does, and the list of (group, name) in the order the Go side
    reads them."""
    from oslo_messaging import server as msg_server
    from oslo_messaging._drivers import base as drv_base
    from oslo_messaging._drivers.zmq_driver import zmq_options
    from oslo_messaging._drivers.zmq_driver.matchmaker import \
        zmq_matchmaker_redis as mm
    from oslo_messaging._drivers.zmq_driver.proxy import zmq_proxy
    from oslo_messaging.rpc import client as rpc_client

    conf = cfg.ConfigOpts()
    # TransportURL.__init__ and get_transport.
    conf.register_opts(msg_transport._transport_opts)
    # RPCClient.__init__.
    conf.register_opts(rpc_client._client_opts)
    # ZmqDriver.__init__: the zmq group, _pool_opts and base_opts.
    zmq_options.register_opts(conf, oslo_messaging.TransportURL(conf))
    # MatchmakerRedisBase.__init__.
    conf.register_opts(mm.matchmaker_redis_opts, "matchmaker_redis")
    # oslo-messaging-zmq-proxy's main().
    conf.register_opts(zmq_proxy.zmq_proxy_opts,
                       group=cfg.OptGroup(name="zmq_proxy_opts",
                                          title="ZeroMQ proxy options"))
    order = [(None, o.dest) for o in
             msg_transport._transport_opts + rpc_client._client_opts +
             msg_server._pool_opts + drv_base.base_opts]
    order += [("oslo_messaging_zmq", o.dest) for o in zmq_options.zmq_opts]
    order += [("matchmaker_redis", o.dest) for o in mm.matchmaker_redis_opts]
    order += [("zmq_proxy_opts", o.dest) for o in zmq_proxy.zmq_proxy_opts]
    return conf, order


def _load(files, url):
    import socket
    _require_zmq("config_load")
    from oslo_messaging._drivers.zmq_driver import zmq_options
    conf, order = _registered_conf()
    tmpdir = tempfile.mkdtemp(prefix="goslo-compat-")
    try:
        paths = []
        for f in files:
            name = f["name"]
            if os.sep in name or name in ("", ".", ".."):
                raise ValueError("config file names are plain names: %r"
                                 % name)
            p = os.path.join(tmpdir, name)
            if "absent" not in f:
                with open(p, "wb") as fh:
                    fh.write(bytes.fromhex(f["hex"]))
            paths.append(p)
        try:
            conf([], project="goslo-interop", default_config_files=paths,
                 default_config_dirs=[], use_env=False)
            values = []
            for group, name in order:
                g = conf if group is None else conf[group]
                values.append([group or "DEFAULT", name, g[name]])
            if url is not None:
                u = oslo_messaging.TransportURL.parse(conf, url)
                proxy = zmq_options.register_opts(conf, u)
                zg = proxy.oslo_messaging_zmq
                values = [[g, n, zg[n] if g == "oslo_messaging_zmq" else v]
                          for g, n, v in values]
        except Exception as exc:  # the class and message are the result
            return {"error": _err(exc, tmpdir)}
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return {"hostname": socket.gethostname(), "values": values}


@op("config_load")
def config_load(files):
    """Loads INI files (later wins; each {"name", "hex"}) with oslo.config
    and the 8.1.4 options as the driver registers them; returns every
    option value in order, or the error (class, message with the
    temporary directory removed from paths)."""
    return _load(files, None)


@op("config_apply_url")
def config_apply_url(files, url):
    """config_load, then the [oslo_messaging_zmq] values as the driver sees
    them through its URL-aware ConfigOptsProxy for url."""
    return _load(files, url)


# --- CPython character tables compat/ pins ---------------------------------

def _ranges(pred, start=0, end=0x110000):
    out, lo = [], None
    for cp in range(start, end):
        ok = not (0xD800 <= cp < 0xE000) and pred(chr(cp))
        if ok and lo is None:
            lo = cp
        elif not ok and lo is not None:
            out.append([lo, cp - 1])
            lo = None
    if lo is not None:
        out.append([lo, end - 1])
    return out


@op("unicode_tables")
def unicode_tables():
    ident = re.compile(r"(?i)[_a-z]")
    return {
        "unidata_version": unicodedata.unidata_version,
        "python": sys.version.split()[0],
        "decimal_zeros": [cp for cp in range(0x80, 0x110000)
                          if unicodedata.decimal(chr(cp), None) == 0],
        "space": _ranges(str.isspace),
        "printable": _ranges(str.isprintable),
        "nfkc_unsafe": [cp for cp in range(0x80, 0x110000)
                        if not (0xD800 <= cp < 0xE000) and any(
                            c in unicodedata.normalize("NFKC", chr(cp))
                            for c in "/?#@:")],
        "ident_non_ascii": [cp for cp in range(0x80, 0x110000)
                            if not (0xD800 <= cp < 0xE000)
                            and ident.fullmatch(chr(cp))],
    }
