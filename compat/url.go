package compat

import (
	"strconv"
	"strings"
)

// TransportHost is one host of a transport URL. Python keeps None apart
// from "": the Has* fields say whether a part was given (an entry "[]:5"
// has an empty, not a missing, host name).
type TransportHost struct {
	Hostname    string
	HasHostname bool
	Port        int
	HasPort     bool
	Username    string
	HasUsername bool
	Password    string
	HasPassword bool
}

// QueryParam is one query parameter; repeated names are joined with commas.
type QueryParam struct {
	Name  string
	Value string
}

// TransportURL is oslo_messaging.TransportURL:
//
//	transport://user:pass@host:port[,userN:passN@hostN:portN]/virtual_host?query
type TransportURL struct {
	// Transport is the whole scheme in lower case, as oslo keeps it:
	// "zmq", "zmq+redis", ... (see Driver and Backend).
	Transport string
	// VirtualHost is the percent-decoded path after the first "/";
	// HasVirtualHost is false when the URL has no path (Python's None).
	VirtualHost    string
	HasVirtualHost bool
	Hosts          []TransportHost
	// Query keeps the parameters in order of first appearance, as the
	// reference's dict does; a repeated name has its values comma-joined.
	Query []QueryParam
}

// Driver is the part of the scheme before "+": "zmq" for "zmq+redis" (the
// stevedore driver name oslo loads).
func (u *TransportURL) Driver() string {
	d, _, _ := strings.Cut(u.Transport, "+")
	return d
}

// Backend is the part of the scheme after the first "+" ("redis",
// "sentinel", "dummy"), or "" when there is none (impl_zmq's
// get_matchmaker_backend).
func (u *TransportURL) Backend() string {
	_, b, _ := strings.Cut(u.Transport, "+")
	return b
}

// QueryValue returns a query parameter.
func (u *TransportURL) QueryValue(name string) (string, bool) {
	for _, q := range u.Query {
		if q.Name == name {
			return q.Value, true
		}
	}
	return "", false
}

// usesParams is urllib.parse.uses_params: schemes whose last path segment
// loses its ";params" to urlparse.
var usesParams = map[string]bool{"": true, "ftp": true, "hdl": true, "prospero": true, "http": true,
	"imap": true, "https": true, "shttp": true, "rtsp": true, "rtspu": true, "sip": true, "sips": true,
	"mms": true, "sftp": true, "tel": true}

// nfkcUnsafe lists the characters whose NFKC form holds one of "/?#@:"
// (Unicode 14.0.0): urlsplit refuses a netloc with any of them.
var nfkcUnsafe = [...]rune{0x2047, 0x2048, 0x2049, 0x2100, 0x2101, 0x2105, 0x2106, 0x2a74, 0xfe13,
	0xfe16, 0xfe55, 0xfe56, 0xfe5f, 0xfe6b, 0xff03, 0xff0f, 0xff1a, 0xff1f, 0xff20}

// pyURL is urlparse's result.
type pyURL struct {
	scheme, netloc, path, params, query, fragment string
}

// geturl is ParseResult.geturl() (urlunparse) for a URL without a scheme,
// the only case oslo reports it.
func (p pyURL) geturl() string {
	url := p.path
	if p.params != "" {
		url += ";" + p.params
	}
	if p.netloc != "" {
		if url != "" && url[0] != '/' {
			url = "/" + url
		}
		url = "//" + p.netloc + url
	}
	if p.scheme != "" {
		url = p.scheme + ":" + url
	}
	if p.query != "" {
		url += "?" + p.query
	}
	if p.fragment != "" {
		url += "#" + p.fragment
	}
	return url
}

// urlparse is urllib.parse.urlparse of the reference environments'
// CPython (Debian's 3.11.2-6+deb12u6, with the CVE-2023-24329 and
// CVE-2024-11168 fixes); the error is the message of the ValueError it
// raises.
func urlparse(s string) (pyURL, string) {
	var p pyURL
	s = strings.TrimLeft(s, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f"+
		"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	if i := strings.IndexByte(s, ':'); i > 0 && isASCIILetter(s[0]) {
		ok := true
		for j := 0; j < i; j++ {
			c := s[j]
			if !(isASCIILetter(c) || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
				ok = false
				break
			}
		}
		if ok {
			p.scheme, s = strings.ToLower(s[:i]), s[i+1:]
		}
	}
	if strings.HasPrefix(s, "//") {
		s = s[2:]
		end := len(s)
		if i := strings.IndexAny(s, "/?#"); i >= 0 {
			end = i
		}
		p.netloc, s = s[:end], s[end:]
		lb, rb := strings.IndexByte(p.netloc, '[') >= 0, strings.IndexByte(p.netloc, ']') >= 0
		if lb != rb {
			return p, "Invalid IPv6 URL"
		}
		if lb && rb {
			if msg := checkBracketedNetloc(p.netloc); msg != "" {
				return p, msg
			}
		}
	}
	s, p.fragment, _ = strings.Cut(s, "#")
	p.path, p.query, _ = strings.Cut(s, "?")
	if msg := checkNetloc(p.netloc); msg != "" {
		return p, msg
	}
	if usesParams[p.scheme] && strings.IndexByte(p.path, ';') >= 0 {
		i := strings.IndexByte(p.path, ';')
		if slash := strings.LastIndexByte(p.path, '/'); slash >= 0 {
			i = strings.IndexByte(p.path[slash:], ';')
			if i >= 0 {
				i += slash
			}
		}
		if i >= 0 {
			p.path, p.params = p.path[:i], p.path[i+1:]
		}
	}
	return p, ""
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// checkNetloc is urllib's _checknetloc: a non-ASCII netloc must not gain
// any of "/?#@:" under NFKC normalization.
func checkNetloc(netloc string) string {
	for _, r := range netloc {
		for _, u := range nfkcUnsafe {
			if r == u {
				return "netloc '" + netloc + "' contains invalid characters under NFKC normalization"
			}
		}
	}
	return ""
}

// ParseTransportURL is TransportURL.parse(conf, url) of oslo.messaging
// 8.1.4 on CPython 3.11.2 for a non-empty url: urllib's urlparse splits it,
// hosts are split at commas and read as [user[:pass]@]host[:port] (an IPv6
// host in brackets; an empty port is no port), user, password and virtual
// host are percent-decoded, and repeated query parameters are
// comma-joined. Faults give a *URLError with Python's exception class and
// message. An empty url gives an error: oslo would read [DEFAULT]
// transport_url then rpc_backend instead (Config.TransportURL does).
func ParseTransportURL(raw string) (*TransportURL, error) {
	if raw == "" {
		return nil, &URLError{URL: raw, Reason: "empty transport URL (oslo falls back to [DEFAULT] transport_url, then rpc_backend)"}
	}
	p, msg := urlparse(raw)
	if msg != "" {
		return nil, &URLError{URL: raw, Class: "ValueError", Reason: msg}
	}
	if p.scheme == "" {
		return nil, &URLError{URL: p.geturl(), Class: "InvalidTransportURL", Reason: "No scheme specified"}
	}
	u := &TransportURL{Transport: p.scheme}
	u.Query = parseQS(p.query)
	if strings.HasPrefix(p.path, "/") {
		u.VirtualHost, u.HasVirtualHost = pyUnquote(p.path[1:]), true
	}
	for _, h := range strings.Split(p.netloc, ",") {
		if h == "" {
			continue
		}
		var th TransportHost
		hostname := h
		if at := strings.LastIndexByte(h, '@'); at >= 0 {
			user := h[:at]
			hostname = h[at+1:]
			if c := strings.IndexByte(user, ':'); c >= 0 {
				th.Password, th.HasPassword = pyUnquote(user[c+1:]), true
				user = user[:c]
			}
			th.Username, th.HasUsername = pyUnquote(user), true
		}
		var port string
		hasPort := false
		switch {
		case hostname == "":
		case hostname[0] == '[':
			end := strings.IndexByte(hostname, ']')
			if end < 0 {
				return nil, &URLError{URL: raw, Class: "ValueError", Reason: "Invalid IPv6 URL"}
			}
			portText := hostname[end:]
			th.Hostname, th.HasHostname = hostname[1:end], true
			if c := strings.IndexByte(portText, ':'); c >= 0 {
				port, hasPort = portText[c+1:], true
			}
		default:
			th.Hostname, th.HasHostname = hostname, true
			if c := strings.IndexByte(hostname, ':'); c >= 0 {
				th.Hostname, port, hasPort = hostname[:c], hostname[c+1:], true
			}
		}
		if hasPort && port != "" {
			n, err := PyIntStr(port)
			if err != nil {
				return nil, &URLError{URL: raw, Class: "ValueError", Reason: err.Error()}
			}
			if !n.IsInt64() || n.Int64() != int64(int(n.Int64())) {
				// Python's int is unbounded; a Go port is not.
				return nil, &URLError{URL: raw, Reason: "port " + n.String() + " does not fit in an int (Python accepts it)"}
			}
			if n.Sign() <= 0 || n.Int64() > 65535 {
				// oslo's int(port) takes any integer: kombu reads 0 as
				// its default port, libzmq and redis-py fail or wrap.
				return nil, &URLError{URL: raw, Reason: "port " + n.String() + " is not a TCP port (1..65535; Python accepts it)"}
			}
			th.Port, th.HasPort = int(n.Int64()), true
		}
		u.Hosts = append(u.Hosts, th)
	}
	return u, nil
}

// parseQS is parse_qs with its defaults: '&'-separated fields, blank values
// and fields without '=' dropped, '+' as space, then percent-decoding;
// repeated names joined with ',' in order (oslo's query dict).
func parseQS(q string) []QueryParam {
	if q == "" {
		return nil
	}
	var out []QueryParam
	index := map[string]int{}
	var values [][]string
	for _, field := range strings.Split(q, "&") {
		name, value, ok := strings.Cut(field, "=")
		if !ok || value == "" {
			continue
		}
		name = pyUnquote(strings.ReplaceAll(name, "+", " "))
		value = pyUnquote(strings.ReplaceAll(value, "+", " "))
		if i, ok := index[name]; ok {
			values[i] = append(values[i], value)
			continue
		}
		index[name] = len(out)
		out = append(out, QueryParam{Name: name})
		values = append(values, []string{value})
	}
	for i := range out {
		out[i].Value = strings.Join(values[i], ",")
	}
	return out
}

// String is TransportURL.__str__ of 8.1.4: user and password quoted with no
// safe character, a host name holding ':' in brackets, the virtual host
// quoted with '/' safe (and left out when empty), the query url-encoded
// with quote_plus in order.
func (u *TransportURL) String() string {
	var sb strings.Builder
	sb.WriteString(u.Transport)
	sb.WriteString("://")
	for i, h := range u.Hosts {
		if i > 0 {
			sb.WriteByte(',')
		}
		if h.HasUsername || h.HasPassword {
			if h.HasUsername {
				sb.WriteString(pyQuote(h.Username, ""))
			}
			if h.HasPassword {
				sb.WriteString(":" + pyQuote(h.Password, ""))
			}
			sb.WriteByte('@')
		}
		if h.Hostname != "" {
			if strings.IndexByte(h.Hostname, ':') >= 0 {
				sb.WriteString("[" + h.Hostname + "]")
			} else {
				sb.WriteString(h.Hostname)
			}
		}
		if h.HasPort {
			sb.WriteString(":" + strconv.Itoa(h.Port))
		}
	}
	sb.WriteByte('/')
	if u.VirtualHost != "" {
		sb.WriteString(pyQuote(u.VirtualHost, "/"))
	}
	if len(u.Query) > 0 {
		sb.WriteByte('?')
		for i, q := range u.Query {
			if i > 0 {
				sb.WriteByte('&')
			}
			sb.WriteString(pyQuotePlus(q.Name))
			sb.WriteByte('=')
			sb.WriteString(pyQuotePlus(q.Value))
		}
	}
	return sb.String()
}
