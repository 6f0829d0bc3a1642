"""Peer operations that drive the real 8.1.4 Redis matchmaker."""
from oslo_config import cfg

import oslo_messaging

from peer_ops import op

_MATCHMAKERS = {}


def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, (list, tuple)):
        return [_text(x) for x in v]
    return v


@op("mm_new")
def mm_new(url, zmq_target_expire=300, zmq_target_update=180,
           wait_timeout=2000, check_timeout=20000):
    """Build oslo's MatchmakerRedis for url (zmq+redis://[:pw@]host:port,...),
    with the zmq and [matchmaker_redis] options registered as the driver
    registers them. Returns a handle for mm_call."""
    from oslo_messaging._drivers.zmq_driver import zmq_options
    from oslo_messaging._drivers.zmq_driver.matchmaker import \
        zmq_matchmaker_redis as mm
    conf = cfg.ConfigOpts()
    conf.register_opts(zmq_options.zmq_opts, group="oslo_messaging_zmq")
    conf.register_opts(mm.matchmaker_redis_opts, group="matchmaker_redis")
    conf([], project="goslo-interop", default_config_files=[],
         default_config_dirs=[])
    zmq_group = "oslo_messaging_zmq"
    conf.set_override("zmq_target_expire", zmq_target_expire, zmq_group)
    conf.set_override("zmq_target_update", zmq_target_update, zmq_group)
    conf.set_override("wait_timeout", wait_timeout, "matchmaker_redis")
    conf.set_override("check_timeout", check_timeout, "matchmaker_redis")
    u = oslo_messaging.TransportURL.parse(conf, url)
    m = mm.MatchmakerRedis(conf, url=u)
    key = len(_MATCHMAKERS) + 1
    _MATCHMAKERS[key] = m
    return key


def _target(t):
    return oslo_messaging.Target(topic=t.get("topic"), server=t.get("server"),
                                 fanout=t.get("fanout", False))


@op("mm_call")
def mm_call(mm, method, target=None, host=None, listener_type=None,
            expire=None, publisher=None, router=None):
    """Call one MatchmakerRedis method; bytes come back as text, lists
    sorted. For get_hosts_by_key, target is the key string."""
    m = _MATCHMAKERS[mm]
    if method == "get_hosts_by_key":
        out = m.get_hosts_by_key(target)
    elif method in ("register", "unregister", "get_hosts", "get_hosts_fanout",
                    "get_hosts_retry", "get_hosts_fanout_retry"):
        args = [_target(target)]
        if method in ("register", "unregister"):
            args.append(host)
        args.append(listener_type)
        if method == "register":
            args.append(expire)
        out = getattr(m, method)(*args)
    elif method == "register_publisher":
        out = m.register_publisher(tuple(publisher), expire)
    elif method == "unregister_publisher":
        out = m.unregister_publisher(tuple(publisher))
    elif method == "register_router":
        out = m.register_router(router, expire)
    elif method == "unregister_router":
        out = m.unregister_router(router)
    elif method == "get_publishers":
        out = [list(_text(p)) for p in m.get_publishers()]
    elif method == "get_routers":
        out = m.get_routers()
    else:
        raise ValueError("unknown matchmaker method %r" % method)
    out = _text(out)
    if isinstance(out, list):
        out = sorted(out)
    return out
