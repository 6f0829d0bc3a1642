package compat

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// TransportHost is one host of a transport URL. Python keeps None apart
// from "": HasPort, HasUsername and HasPassword say whether the part was
// given, and an empty Hostname is Python's None.
type TransportHost struct {
	Hostname    string
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
// transport://user:pass@host:port[,userN:passN@hostN:portN]/virtual_host?query
type TransportURL struct {
	// Transport is the scheme, lower case: "zmq", "zmq+redis", ...
	Transport string
	// VirtualHost is the unquoted path after the first "/"; HasVirtualHost is
	// false when the URL has no path (Python's None).
	VirtualHost    string
	HasVirtualHost bool
	Hosts          []TransportHost
	// Query keeps the parameters in first-appearance order.
	Query []QueryParam
}

// Driver is the part of the scheme before "+": "zmq" for "zmq+redis".
func (u *TransportURL) Driver() string {
	d, _, _ := strings.Cut(u.Transport, "+")
	return d
}

// Backend is the part of the scheme after "+" ("redis", "sentinel",
// "dummy"), or "" when there is none.
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

// ParseTransportURL is TransportURL.parse(conf, url) of oslo.messaging
// 8.1.4 on CPython 3.11: urllib's urlparse splits the URL, hosts are split
// at commas and read as [user[:pass]@]host[:port] (an IPv6 host in
// brackets), user, password and virtual host are percent-decoded, and
// repeated query parameters are joined with commas. Faults give a *URLError
// with Python's exception class and message.
func ParseTransportURL(raw string) (*TransportURL, error) {
	// urlsplit drops tabs and newlines anywhere in the URL.
	s := strings.Map(func(r rune) rune {
		if r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, raw)
	scheme, rest := splitScheme(s)
	var netloc string
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		end := len(rest)
		for _, c := range "/?#" {
			if i := strings.IndexRune(rest, c); i >= 0 && i < end {
				end = i
			}
		}
		netloc, rest = rest[:end], rest[end:]
		if (strings.Contains(netloc, "[") && !strings.Contains(netloc, "]")) ||
			(strings.Contains(netloc, "]") && !strings.Contains(netloc, "[")) {
			return nil, &URLError{URL: raw, Class: "ValueError", Reason: "Invalid IPv6 URL"}
		}
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	path, query, _ := strings.Cut(rest, "?")
	if scheme == "" {
		return nil, &URLError{URL: raw, Class: "InvalidTransportURL", Reason: "No scheme specified"}
	}
	u := &TransportURL{Transport: scheme}
	u.Query = parseQS(query)
	if strings.HasPrefix(path, "/") {
		u.VirtualHost, u.HasVirtualHost = pyUnquote(path[1:], false), true
	}
	for _, h := range strings.Split(netloc, ",") {
		if h == "" {
			continue
		}
		var th TransportHost
		hostname := h
		if at := strings.LastIndexByte(h, '@'); at >= 0 {
			user := h[:at]
			hostname = h[at+1:]
			if c := strings.IndexByte(user, ':'); c >= 0 {
				th.Password, th.HasPassword = pyUnquote(user[c+1:], false), true
				user = user[:c]
			}
			th.Username, th.HasUsername = pyUnquote(user, false), true
		}
		var port string
		hasPort := false
		switch {
		case hostname == "":
		case strings.HasPrefix(hostname, "["):
			end := strings.IndexByte(hostname, ']')
			if end < 0 {
				return nil, &URLError{URL: raw, Class: "ValueError", Reason: "Invalid IPv6 URL"}
			}
			portText := hostname[end:]
			hostname = hostname[1:end]
			if c := strings.IndexByte(portText, ':'); c >= 0 {
				port, hasPort = portText[c+1:], true
			}
		default:
			if c := strings.IndexByte(hostname, ':'); c >= 0 {
				hostname, port, hasPort = hostname[:c], hostname[c+1:], true
			}
		}
		th.Hostname = hostname
		if hasPort && port != "" {
			n, ok := PyInt(port)
			if !ok || !n.IsInt64() {
				if ok { // Python's int is unbounded; goslo's port is not
					return nil, &URLError{URL: raw, Class: "ValueError", Reason: "port out of range: " + port}
				}
				return nil, &URLError{URL: raw, Class: "ValueError", Reason: "invalid literal for int() with base 10: " + pyQuote(port)}
			}
			th.Port, th.HasPort = int(n.Int64()), true
		}
		u.Hosts = append(u.Hosts, th)
	}
	return u, nil
}

const schemeChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."

// splitScheme is urlsplit's scheme rule (CPython 3.11): letters first, then
// scheme characters up to the first ':'; the scheme is lower-cased.
func splitScheme(s string) (scheme, rest string) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", s
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return "", s
	}
	for j := 0; j < i; j++ {
		if !strings.ContainsRune(schemeChars, rune(s[j])) {
			return "", s
		}
	}
	return strings.ToLower(s[:i]), s[i+1:]
}

// parseQS is parse_qs with its defaults: '&'-separated fields, blank values
// and fields without '=' dropped, '+' as space, then percent-decoding;
// repeated names joined with ',' in order (oslo's query dict).
func parseQS(q string) []QueryParam {
	var out []QueryParam
	if q == "" {
		return nil
	}
	index := map[string]int{}
	var values [][]string
	for _, field := range strings.Split(q, "&") {
		if field == "" {
			continue
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok || value == "" {
			continue
		}
		name = pyUnquote(strings.ReplaceAll(name, "+", " "), false)
		value = pyUnquote(strings.ReplaceAll(value, "+", " "), false)
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

// pyUnquote is urllib.parse.unquote: %XX sequences become bytes, anything
// else stays, and the bytes are read as UTF-8 with invalid sequences
// replaced by U+FFFD.
func pyUnquote(s string, _ bool) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b = append(b, byte(v))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		sb.WriteRune(r)
		b = b[n:]
	}
	return sb.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// String is TransportURL.__str__: credentials and the virtual host quoted,
// IPv6 hosts in brackets, the query url-encoded in order.
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
				sb.WriteString(pyQuote2(h.Username, ""))
			}
			if h.HasPassword {
				sb.WriteString(":" + pyQuote2(h.Password, ""))
			}
			sb.WriteByte('@')
		}
		if h.Hostname != "" {
			if strings.Contains(h.Hostname, ":") {
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
		sb.WriteString(pyQuote2(u.VirtualHost, "/"))
	}
	if len(u.Query) > 0 {
		sb.WriteByte('?')
		for i, q := range u.Query {
			if i > 0 {
				sb.WriteByte('&')
			}
			sb.WriteString(quotePlus(q.Name))
			sb.WriteByte('=')
			sb.WriteString(quotePlus(q.Value))
		}
	}
	return sb.String()
}

// pyQuote2 is urllib.parse.quote(s, safe): UTF-8 bytes outside the
// unreserved set and safe are percent-encoded in upper-case hex.
func pyQuote2(s, safe string) string {
	const upper = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '-' || c == '~' || strings.IndexByte(safe, c) >= 0 {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(upper[c>>4])
		sb.WriteByte(upper[c&0xf])
	}
	return sb.String()
}

// quotePlus is urllib.parse.quote_plus: quote with spaces as '+'.
func quotePlus(s string) string {
	if !strings.Contains(s, " ") {
		return pyQuote2(s, "")
	}
	return strings.ReplaceAll(pyQuote2(s, " "), " ", "+")
}
