package compat

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reproduces the few CPython 3.11 behaviours the reference leans
// on: str.isspace/strip, int() of a str, repr() of a str, urllib's quote and
// unquote. The Python peers run CPython 3.11.2 (Unicode 14.0.0); Go's
// unicode tables are newer, so the character classes that differ are pinned
// here to Python's (TestCompatUnicodeTables in interop checks every table
// against the real interpreter).

// pyIsSpace is str.isspace for one character.
func pyIsSpace(r rune) bool {
	switch {
	case r < 0x80:
		return r == ' ' || (r >= '\t' && r <= '\r') || (r >= 0x1c && r <= 0x1f)
	default:
		// Outside ASCII Python and Go agree: U+0085, U+00A0, and the Zs,
		// Zl, Zp characters (all Unicode 1.1–4.0 era, unchanged since).
		return unicode.IsSpace(r)
	}
}

// pyStrip, pyLStrip and pyRStrip are str.strip(), lstrip() and rstrip()
// without arguments.
func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyLStrip(s string) string { return strings.TrimLeftFunc(s, pyIsSpace) }
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// pyDecimalZeros are the code points of DIGIT ZERO of every non-ASCII run of
// ten decimal digits (category Nd) in Unicode 14.0.0, the version of
// CPython 3.11's unicodedata. Each run holds 0–9 in order.
var pyDecimalZeros = [...]rune{
	0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0,
	0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50,
	0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0,
	0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50,
	0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140,
	0x1e2f0, 0x1e950, 0x1fbf0,
}

// pyDecimal is unicodedata.decimal(r): the digit value of a decimal digit.
func pyDecimal(r rune) (int, bool) {
	if r >= '0' && r <= '9' {
		return int(r - '0'), true
	}
	lo, hi := 0, len(pyDecimalZeros)
	for lo < hi {
		m := (lo + hi) / 2
		if pyDecimalZeros[m] <= r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 && r-pyDecimalZeros[lo-1] < 10 {
		return int(r - pyDecimalZeros[lo-1]), true
	}
	return 0, false
}

// pyNotPrintable lists the characters Go's unicode.IsPrint calls printable
// and CPython 3.11's str.isprintable does not: those Unicode 15.0 assigned
// after 14.0.
var pyNotPrintable = [...][2]rune{
	{0xCF3, 0xCF3}, {0xECE, 0xECE}, {0x10EFD, 0x10EFF}, {0x1123F, 0x11241}, {0x11B00, 0x11B09},
	{0x11F00, 0x11F10}, {0x11F12, 0x11F3A}, {0x11F3E, 0x11F59}, {0x1342F, 0x1342F}, {0x13440, 0x13455},
	{0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1D2C0, 0x1D2D3}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D},
	{0x1E08F, 0x1E08F}, {0x1E4D0, 0x1E4F9}, {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F},
	{0x1F7D9, 0x1F7D9}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA88}, {0x1FAAD, 0x1FAAF}, {0x1FABB, 0x1FABD},
	{0x1FABF, 0x1FABF}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADB}, {0x1FAE8, 0x1FAE8}, {0x1FAF7, 0x1FAF8},
	{0x2B739, 0x2B739}, {0x31350, 0x323AF},
}

// pyIsPrintable is str.isprintable for one character.
func pyIsPrintable(r rune) bool {
	if !unicode.IsPrint(r) {
		return false
	}
	if r < 0xCF3 {
		return true
	}
	for _, rg := range pyNotPrintable {
		if r >= rg[0] && r <= rg[1] {
			return false
		}
	}
	return true
}

// pyRepr is repr() of a str. Bytes of s that are not UTF-8 (a Python str
// cannot hold them) are shown as surrogate escapes, \udcXX.
func pyRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString(`\udc` + string(hex[s[i]>>4]) + string(hex[s[i]&0xf]))
			i++
			continue
		}
		i += n
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < ' ' || r == 0x7f:
			b.WriteString(`\x` + string(hex[r>>4]) + string(hex[r&0xf]))
		case r < 0x7f || pyIsPrintable(r):
			b.WriteRune(r)
		case r <= 0xff:
			b.WriteString(`\x` + string(hex[r>>4]) + string(hex[r&0xf]))
		case r <= 0xffff:
			b.WriteString(`\u` + leftPad(strconv.FormatInt(int64(r), 16), 4))
		default:
			b.WriteString(`\U` + leftPad(strconv.FormatInt(int64(r), 16), 8))
		}
	}
	b.WriteByte(q)
	return b.String()
}

func leftPad(s string, n int) string {
	if len(s) < n {
		return strings.Repeat("0", n-len(s)) + s
	}
	return s
}

// pyTruncate keeps the first n characters of s, as "%.200R" does.
func pyTruncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// pyMaxStrDigits is sys.get_int_max_str_digits() of CPython 3.11.
const pyMaxStrDigits = 4300

// PyInt reads s as CPython's int(b) reads a bytes value b in base 10: ASCII
// whitespace around, an optional sign, ASCII digits with single
// underscores between them, at most 4300 digits. It is what a Python
// receiver does with a numeric frame.
func PyInt(s string) (*big.Int, bool) {
	n, reason := pyInt(s, false)
	return n, reason == ""
}

// PyIntStr reads s as CPython's int(s) reads a str in base 10: like PyInt,
// plus any Unicode decimal digit (Arabic-Indic, fullwidth, ...) and
// Unicode whitespace around. The error is Python's ValueError message.
func PyIntStr(s string) (*big.Int, error) {
	n, reason := pyInt(s, true)
	if reason != "" {
		return nil, &pyValueError{reason}
	}
	return n, nil
}

type pyValueError struct{ msg string }

func (e *pyValueError) Error() string { return e.msg }

// pyInt implements int(): it returns the value, or the ValueError message.
func pyInt(s string, text bool) (*big.Int, string) {
	invalid := func() (*big.Int, string) {
		return nil, "invalid literal for int() with base 10: " + pyTruncate(pyRepr(s), 200)
	}
	// CPython first maps a str to ASCII: other whitespace to ' ', other
	// decimal digits to their ASCII digit, anything else to '?'.
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x7f {
			buf = append(buf, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch d, ok := pyDecimal(r); {
		case !text || (r == utf8.RuneError && n == 1):
			buf = append(buf, '?')
		case pyIsSpace(r):
			buf = append(buf, ' ')
		case ok:
			buf = append(buf, byte('0'+d))
		default:
			buf = append(buf, '?')
		}
	}
	isSpace := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	i := 0
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	neg := false
	if i < len(buf) && (buf[i] == '+' || buf[i] == '-') {
		neg = buf[i] == '-'
		i++
	}
	if i >= len(buf) || buf[i] < '0' || buf[i] > '9' {
		return invalid()
	}
	digits := make([]byte, 0, len(buf)-i)
	prevUnderscore := false
	for ; i < len(buf) && (buf[i] >= '0' && buf[i] <= '9' || buf[i] == '_'); i++ {
		if buf[i] == '_' {
			if prevUnderscore {
				return invalid()
			}
			prevUnderscore = true
			continue
		}
		prevUnderscore = false
		digits = append(digits, buf[i])
	}
	if prevUnderscore {
		return invalid()
	}
	if len(digits) > pyMaxStrDigits {
		return nil, "Exceeds the limit (4300 digits) for integer string conversion: value has " +
			strconv.Itoa(len(digits)) + " digits; use sys.set_int_max_str_digits() to increase the limit"
	}
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	if i != len(buf) {
		return invalid()
	}
	n, _ := new(big.Int).SetString(string(digits), 10)
	if neg {
		n.Neg(n)
	}
	return n, ""
}

// pyDecodeReplace is bytes.decode('utf-8', 'replace'): each maximal invalid
// subpart becomes one U+FFFD, as CPython's decoder does (Go's DecodeRune
// would give one per byte of a truncated sequence).
func pyDecodeReplace(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			sb.WriteByte(c)
			i++
			continue
		}
		need, lo, hi, ok := utf8Lead(c)
		if !ok {
			sb.WriteRune(utf8.RuneError)
			i++
			continue
		}
		j := i + 1
		for k := 0; k < need; k++ {
			if j >= len(b) {
				break
			}
			l, h := byte(0x80), byte(0xbf)
			if k == 0 {
				l, h = lo, hi
			}
			if b[j] < l || b[j] > h {
				break
			}
			j++
		}
		if j-i == need+1 {
			sb.Write(b[i:j])
		} else {
			sb.WriteRune(utf8.RuneError)
		}
		i = j
	}
	return sb.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// pyUnquote is urllib.parse.unquote(s): each run of ASCII characters has
// its %XX escapes turned into bytes, decoded as UTF-8 with errors
// replaced; other characters stay as they are.
func pyUnquote(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] < 0x80 {
			j++
		}
		if j > i { // an ASCII run
			run := s[i:j]
			b := make([]byte, 0, len(run))
			for k := 0; k < len(run); k++ {
				if run[k] == '%' && k+2 < len(run) && isHex(run[k+1]) && isHex(run[k+2]) {
					b = append(b, unhex(run[k+1])<<4|unhex(run[k+2]))
					k += 2
					continue
				}
				b = append(b, run[k])
			}
			sb.WriteString(pyDecodeReplace(b))
			i = j
			continue
		}
		for j < len(s) && s[j] >= 0x80 {
			j++
		}
		sb.WriteString(s[i:j])
		i = j
	}
	return sb.String()
}

// pyQuote is urllib.parse.quote(s, safe): the UTF-8 bytes of s outside
// letters, digits, "_.-~" and safe are written as %XX in upper-case hex.
func pyQuote(s, safe string) string {
	const upper = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '-' || c == '~' || (c < 0x80 && strings.IndexByte(safe, c) >= 0) {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(upper[c>>4])
		sb.WriteByte(upper[c&0xf])
	}
	return sb.String()
}

// pyQuotePlus is urllib.parse.quote_plus(s): quote with spaces as '+'.
func pyQuotePlus(s string) string {
	if strings.IndexByte(s, ' ') < 0 {
		return pyQuote(s, "")
	}
	return strings.ReplaceAll(pyQuote(s, " "), " ", "+")
}

// utf8Lead reads a UTF-8 lead byte as CPython's decoder does: how many
// continuation bytes follow, and the allowed range of the second byte
// (narrowed for E0, ED, F0 and F4, which rules out overlongs, surrogates
// and code points past U+10FFFF). ok is false for a byte that cannot start
// a sequence.
func utf8Lead(c byte) (need int, lo, hi byte, ok bool) {
	lo, hi = 0x80, 0xbf
	switch {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		need, lo = 2, 0xa0
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
		need = 2
	case c == 0xed:
		need, hi = 2, 0x9f
	case c == 0xf0:
		need, lo = 3, 0x90
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	case c == 0xf4:
		need, hi = 3, 0x8f
	default:
		return 0, 0, 0, false
	}
	return need, lo, hi, true
}

// pyFloat is Python's float() of a string: surrounding whitespace
// stripped, decimal digits with single underscores between them, an
// optional fraction and exponent, or inf, infinity and nan in any case
// with a sign. Hexadecimal forms, which strconv accepts, are refused.
func pyFloat(s string) (float64, bool) {
	s = pyStrip(s)
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return 0, false
	}
	switch strings.ToLower(body) {
	case "inf", "infinity", "nan":
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	var clean []byte
	digits, prevDigit, seenDot, seenExp := false, false, false, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= '0' && c <= '9':
			digits, prevDigit = true, true
		case c == '_':
			if !prevDigit || i+1 >= len(body) || body[i+1] < '0' || body[i+1] > '9' {
				return 0, false
			}
			prevDigit = false
			continue
		case c == '.' && !seenDot && !seenExp:
			seenDot, prevDigit = true, false
		case (c == 'e' || c == 'E') && digits && !seenExp:
			seenExp, prevDigit, digits = true, false, false
			if i+1 < len(body) && (body[i+1] == '+' || body[i+1] == '-') {
				clean = append(clean, c, body[i+1])
				i++
				continue
			}
		default:
			return 0, false
		}
		clean = append(clean, c)
	}
	if !digits {
		return 0, false
	}
	f, err := strconv.ParseFloat(s[:len(s)-len(body)]+string(clean), 64)
	if err != nil {
		// Out of range: Python gives inf as strconv does, with ErrRange.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// pyFloatStr is Python's str(float) (repr): the shortest round-tripping
// digits, positional from 1e-4 up to 1e16, else with an exponent of at
// least two digits; ".0" added to integral values; inf, -inf, nan.
func pyFloatStr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}
