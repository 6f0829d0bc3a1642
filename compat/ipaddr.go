package compat

import "strings"

// The CPython of the reference environments (Debian's 3.11.2-6+deb12u6)
// carries the CVE-2024-11168 fix: urlsplit checks a netloc holding both
// '[' and ']' with _check_bracketed_netloc, which parses the bracketed
// host with the ipaddress module. This file reproduces that check.

// checkBracketedNetloc is urllib.parse._check_bracketed_netloc; it returns
// the ValueError message, or "".
func checkBracketedNetloc(netloc string) string {
	hostPort := netloc
	if at := strings.LastIndexByte(netloc, '@'); at >= 0 {
		hostPort = netloc[at+1:]
	}
	var hostname string
	if before, bracketed, found := strings.Cut(hostPort, "["); found {
		if before != "" {
			return "Invalid IPv6 URL"
		}
		var port string
		hostname, port, _ = strings.Cut(bracketed, "]")
		if port != "" && port[0] != ':' {
			return "Invalid IPv6 URL"
		}
	} else {
		hostname, _, _ = strings.Cut(hostPort, ":")
	}
	return checkBracketedHost(hostname)
}

// checkBracketedHost is urllib.parse._check_bracketed_host.
func checkBracketedHost(hostname string) string {
	if strings.HasPrefix(hostname, "v") {
		// re.match(r"\Av[a-fA-F0-9]+\..+\Z", hostname)
		i := 1
		for i < len(hostname) && isHex(hostname[i]) {
			i++
		}
		if i == 1 || i >= len(hostname) || hostname[i] != '.' || i+1 >= len(hostname) {
			return "IPvFuture address is invalid"
		}
		return ""
	}
	if pyIPv4(hostname) {
		return "An IPv4 address cannot be in brackets"
	}
	if !pyIPv6(hostname) {
		return pyRepr(hostname) + " does not appear to be an IPv4 or IPv6 address"
	}
	return ""
}

// pyIPv4 is whether ipaddress.IPv4Address(s) accepts s: four dot-separated
// ASCII decimal octets of at most three digits, no leading zero, at most
// 255.
func pyIPv4(s string) bool {
	if s == "" || strings.IndexByte(s, '/') >= 0 {
		return false
	}
	octets := strings.Split(s, ".")
	if len(octets) != 4 {
		return false
	}
	for _, o := range octets {
		if o == "" || len(o) > 3 {
			return false
		}
		n := 0
		for i := 0; i < len(o); i++ {
			if o[i] < '0' || o[i] > '9' {
				return false
			}
			n = n*10 + int(o[i]-'0')
		}
		if (o != "0" && o[0] == '0') || n > 255 {
			return false
		}
	}
	return true
}

// pyIPv6 is whether ipaddress.IPv6Address(s) accepts s, scope id
// ("%...") included.
func pyIPv6(s string) bool {
	if strings.IndexByte(s, '/') >= 0 {
		return false
	}
	if addr, scope, found := strings.Cut(s, "%"); found {
		if scope == "" || strings.IndexByte(scope, '%') >= 0 {
			return false
		}
		s = addr
	}
	if s == "" {
		return false
	}
	parts := strings.Split(s, ":")
	if len(parts) < 3 {
		return false
	}
	if last := parts[len(parts)-1]; strings.IndexByte(last, '.') >= 0 {
		if !pyIPv4(last) {
			return false
		}
		parts = append(parts[:len(parts)-1], "0", "0") // two hextets
	}
	const hextets = 8
	if len(parts) > hextets+1 {
		return false
	}
	skip := -1
	for i := 1; i < len(parts)-1; i++ {
		if parts[i] == "" {
			if skip >= 0 {
				return false
			}
			skip = i
		}
	}
	var hi, lo int
	if skip >= 0 {
		hi, lo = skip, len(parts)-skip-1
		if parts[0] == "" {
			if hi--; hi != 0 {
				return false
			}
		}
		if parts[len(parts)-1] == "" {
			if lo--; lo != 0 {
				return false
			}
		}
		if hextets-(hi+lo) < 1 {
			return false
		}
	} else {
		if len(parts) != hextets || parts[0] == "" || parts[len(parts)-1] == "" {
			return false
		}
		hi = len(parts)
	}
	hextet := func(h string) bool {
		if h == "" || len(h) > 4 {
			return false
		}
		for i := 0; i < len(h); i++ {
			if !isHex(h[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < hi; i++ {
		if !hextet(parts[i]) {
			return false
		}
	}
	for i := len(parts) - lo; i < len(parts); i++ {
		if !hextet(parts[i]) {
			return false
		}
	}
	return true
}
