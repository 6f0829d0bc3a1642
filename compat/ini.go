package compat

import (
	"fmt"
	"strconv"
	"strings"
)

// iniFile is one file as oslo.config's ConfigParser leaves it: the values
// of every key by section, as written and under the normalized section
// name (GroupDefault stays, other names are lower-cased), in file order.
type iniFile struct {
	name       string
	sections   map[string]map[string][]string
	normalized map[string]map[string][]string
	// keys lists each (normalized section, key) once, in order of first
	// appearance, with the line of its first assignment.
	keys []iniKey
}

type iniKey struct {
	section, rawSection, key string
	line                     int
}

// normalizeGroup is oslo.config's _normalize_group_name.
func normalizeGroup(g string) string {
	if g == GroupDefault {
		return g
	}
	return strings.ToLower(g)
}

// parseINI is oslo.config's ConfigParser over a file read as Python's
// open() does (UTF-8, universal newlines): "[section]" headers, "key =
// value" or "key: value" (the first of '=' and ':' splits), key and value
// stripped, one pair of enclosing quotes of the same kind removed from the
// first line, indented lines continuing a value (joined with "\n"), blank
// lines ending it, '#' and ';' comments, no assignment before a section.
func parseINI(name string, data []byte) (*iniFile, error) {
	if err := checkUTF8(name, data); err != nil {
		return nil, err
	}
	f := &iniFile{name: name, sections: map[string]map[string][]string{}, normalized: map[string]map[string][]string{}}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.SplitAfter(text, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	perr := func(lineno int, msg string, line *string) error {
		shown := "None"
		if line != nil {
			shown = pyRepr(*line)
		}
		where := fmt.Sprintf("at %s:%d, %s: %s", name, lineno, msg, shown)
		return &ConfigError{File: name, Line: lineno, Reason: msg + ": " + shown,
			Class: "ConfigFileParseError", Message: "Failed to parse " + name + ": " + where}
	}
	var (
		section  string // "" = none yet (a section name is never empty)
		key      string
		hasKey   bool
		keyLine  int
		value    []string
		lineno   int
		seenKeys = map[[2]string]bool{}
	)
	flush := func() error {
		if section == "" {
			return perr(lineno, "Section must be started before assignment", nil)
		}
		v := strings.Join(value, "\n")
		norm := normalizeGroup(section)
		f.sections[section][key] = append(f.sections[section][key], v)
		f.normalized[norm][key] = append(f.normalized[norm][key], v)
		if !seenKeys[[2]string{norm, key}] {
			seenKeys[[2]string{norm, key}] = true
			f.keys = append(f.keys, iniKey{section: norm, rawSection: section, key: key, line: keyLine})
		}
		hasKey, key, value = false, "", nil
		return nil
	}
	for _, raw := range lines {
		lineno++
		line := pyRStrip(raw)
		if line == "" {
			if hasKey {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !hasKey {
				return nil, perr(lineno, "Unexpected continuation line", &line)
			}
			value = append(value, pyLStrip(line))
			continue
		}
		if hasKey {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		switch line[0] {
		case '[':
			if !strings.HasSuffix(line, "]") {
				return nil, perr(lineno, "Invalid section (must end with ])", &line)
			}
			if len([]rune(line)) <= 2 {
				return nil, perr(lineno, "Empty section name", &line)
			}
			section = line[1 : len(line)-1]
			if f.sections[section] == nil {
				f.sections[section] = map[string][]string{}
			}
			if norm := normalizeGroup(section); f.normalized[norm] == nil {
				f.normalized[norm] = map[string][]string{}
			}
		case '#', ';':
		default:
			colon, equal := strings.IndexByte(line, ':'), strings.IndexByte(line, '=')
			if colon < 0 && equal < 0 {
				return nil, perr(lineno, "No ':' or '=' found in assignment", &line)
			}
			var k, v string
			if colon < 0 || (equal >= 0 && equal < colon) {
				k, v = line[:equal], line[equal+1:]
			} else {
				k, v = line[:colon], line[colon+1:]
			}
			v = pyStrip(v)
			if v != "" && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
				if len(v) >= 2 {
					v = v[1 : len(v)-1]
				} else {
					v = "" // value[1:-1] of a lone quote
				}
			}
			k = pyStrip(k)
			if k == "" {
				return nil, perr(lineno, "Key cannot be empty", &line)
			}
			key, hasKey, keyLine, value = k, true, lineno, []string{v}
		}
	}
	if hasKey {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// pyReadChunk is the size of the chunks CPython's text files decode.
const pyReadChunk = 8192

// checkUTF8 refuses what Python's open() (UTF-8, strict) refuses, with its
// UnicodeDecodeError message. CPython decodes 8 KiB chunks, each after the
// incomplete sequence the previous one ended with, and reports positions
// within that buffer; an incomplete sequence at the end of the file is
// reported by a last, final decode of that sequence alone.
func checkUTF8(name string, b []byte) error {
	// fail reports the n bytes at b[at], at position pos of the buffer.
	fail := func(at, pos, n int, reason string) error {
		msg := "'utf-8' codec can't decode byte 0x" + leftPad(strconv.FormatUint(uint64(b[at]), 16), 2)
		msg += " in position " + strconv.Itoa(pos) + ": " + reason
		if n > 1 {
			msg = "'utf-8' codec can't decode bytes in position " + strconv.Itoa(pos) + "-" + strconv.Itoa(pos+n-1) + ": " + reason
		}
		return &ConfigError{File: name, Reason: msg, Class: "UnicodeDecodeError", Message: msg}
	}
	pending := -1 // absolute start of an incomplete sequence carried over
	for start := 0; start < len(b); start += pyReadChunk {
		end := min(start+pyReadChunk, len(b))
		bufStart := start
		if pending >= 0 {
			bufStart = pending
		}
		pending = -1
		for i := bufStart; i < end; {
			c := b[i]
			if c < 0x80 {
				i++
				continue
			}
			need, lo, hi, ok := utf8Lead(c)
			if !ok {
				return fail(i, i-bufStart, 1, "invalid start byte")
			}
			k := 1
			for ; k <= need; k++ {
				if i+k >= end {
					break
				}
				l, h := byte(0x80), byte(0xbf)
				if k == 1 {
					l, h = lo, hi
				}
				if b[i+k] < l || b[i+k] > h {
					return fail(i, i-bufStart, k, "invalid continuation byte")
				}
			}
			if k <= need { // cut by the end of the chunk: carried over
				pending = i
				break
			}
			i += need + 1
		}
	}
	if pending >= 0 {
		return fail(pending, 0, len(b)-pending, "unexpected end of data")
	}
	return nil
}
