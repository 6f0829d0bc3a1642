package compat

import "strings"

// RedactedPassword replaces a password in what goslo prints.
const RedactedPassword = "***"

// RedactURL returns raw with the password of every host's userinfo
// replaced by "***" ("zmq+redis://:S3cret@h:6379" becomes
// "zmq+redis://:***@h:6379"), for error messages, log lines and command
// output. It works on the text, so it redacts URLs that do not parse
// too. A URL whose userinfo cannot be told from its hosts (a comma in a
// password, or a host without userinfo before one with it) has everything
// from its first ':' to its last '@' redacted: too much rather than a
// password. Text without "://" or without '@' is returned as is.
func RedactURL(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	start := i + 3
	end := len(raw)
	if j := strings.IndexAny(raw[start:], "?#"); j >= 0 {
		end = start + j
	}
	region := raw[start:end]
	lastAt := strings.LastIndexByte(region, '@')
	if lastAt < 0 {
		return raw
	}
	// The hosts are the region up to the first '/' after the last '@'
	// (a '/' before it is inside a password, and urlsplit would cut there:
	// treat it as userinfo all the same).
	netEnd := len(region)
	if k := strings.IndexByte(region[lastAt:], '/'); k >= 0 {
		netEnd = lastAt + k
	}
	netloc := region[:netEnd]
	segs := strings.Split(netloc, ",")
	clean := true
	for k, seg := range segs {
		at := strings.LastIndexByte(seg, '@')
		if at < 0 {
			if strings.IndexByte(strings.Join(segs[k+1:], ","), '@') >= 0 {
				clean = false // a comma inside a password, or mixed hosts
				break
			}
			continue
		}
		if c := strings.IndexByte(seg[:at], ':'); c >= 0 {
			segs[k] = seg[:c+1] + RedactedPassword + seg[at:]
		}
	}
	if !clean {
		c := strings.IndexByte(netloc, ':')
		at := strings.LastIndexByte(netloc, '@')
		if c < 0 || c > at {
			return raw
		}
		return raw[:start] + netloc[:c+1] + RedactedPassword + netloc[at:] + region[netEnd:] + raw[end:]
	}
	return raw[:start] + strings.Join(segs, ",") + region[netEnd:] + raw[end:]
}

// Redacted is String with the passwords replaced by "***" (RedactURL).
func (u *TransportURL) Redacted() string { return RedactURL(u.String()) }
