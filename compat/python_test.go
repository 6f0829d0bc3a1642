package compat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCPythonTables checks every character class compat pins against the
// tables the interop suite reads from the peers' CPython
// (testdata/compat/cpython_unicode.json, TestCompatUnicodeTables).
func TestCPythonTables(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "compat", "cpython_unicode.json"))
	require.NoError(t, err)
	var tables struct {
		DecimalZeros  []rune    `json:"decimal_zeros"`
		Space         [][2]rune `json:"space"`
		Printable     [][2]rune `json:"printable"`
		NFKCUnsafe    []rune    `json:"nfkc_unsafe"`
		IdentNonASCII []rune    `json:"ident_non_ascii"`
	}
	require.NoError(t, json.Unmarshal(b, &tables))
	in := func(ranges [][2]rune, r rune) bool {
		for _, rg := range ranges {
			if r >= rg[0] && r <= rg[1] {
				return true
			}
		}
		return false
	}
	zero := map[rune]bool{}
	for _, z := range tables.DecimalZeros {
		zero[z] = true
	}
	require.Equal(t, tables.NFKCUnsafe, nfkcUnsafe[:])
	ident := map[rune]bool{}
	for _, r := range tables.IdentNonASCII {
		ident[r] = true
	}
	for r := rune(0); r < 0x110000; r++ {
		if r >= 0xd800 && r < 0xe000 {
			continue
		}
		require.Equal(t, in(tables.Space, r), pyIsSpace(r), "isspace %U", r)
		require.Equal(t, in(tables.Printable, r), pyIsPrintable(r), "isprintable %U", r)
		if r >= 0x80 {
			d, ok := pyDecimal(r)
			require.Equal(t, zero[r], ok && d == 0, "decimal %U", r)
			require.Equal(t, ident[r], identLen(string(r)) > 0, "identifier %U", r)
		}
	}
}

func TestPyInt(t *testing.T) {
	for s, want := range map[string]string{
		"12": "12", " 12 ": "12", "+12": "12", "-0": "0", "1_000": "1000", "0_1": "1", "00": "0",
		"\t7\n": "7", "١٢": "12", "１２": "12", "\u00a012\u3000": "12", "𝟏𝟐": "12",
		"99999999999999999999999": "99999999999999999999999",
	} {
		n, err := PyIntStr(s)
		require.NoError(t, err, "%q", s)
		require.Equal(t, want, n.String(), "%q", s)
	}
	for _, s := range []string{"", " ", "+", "-", "_1", "1_", "1__0", "+_1", "1 2", "0x10", "1.0", "\x1c1", "1²", "\U00011f51", "é", "1\x7f"} {
		_, err := PyIntStr(s)
		require.Error(t, err, "%q", s)
		require.Equal(t, "invalid literal for int() with base 10: "+pyRepr(s), err.Error())
	}
	// Bytes semantics: ASCII only.
	n, ok := PyInt(" 01 ")
	require.True(t, ok)
	require.Equal(t, int64(1), n.Int64())
	_, ok = PyInt("١")
	require.False(t, ok)
	_, ok = PyInt("\u00a01")
	require.False(t, ok)
}

func TestPyRepr(t *testing.T) {
	for s, want := range map[string]string{
		"":                     `''`,
		"abc":                  `'abc'`,
		"it's":                 `"it's"`,
		`a'b"c`:                `'a\'b"c'`,
		`"`:                    `'"'`,
		"\\":                   `'\\'`,
		"\t\n\r":               `'\t\n\r'`,
		"\x00\x7f":             `'\x00\x7f'`,
		"é€😀":                  `'é€😀'`,
		"\u00a0\u0085\u00ad":   `'\xa0\x85\xad'`,
		"\u2028\ufeff":         `'\u2028\ufeff'`,
		"\U000e0001\U0001e4f1": `'\U000e0001\U0001e4f1'`,
		"\xff":                 `'\udcff'`,
	} {
		require.Equal(t, want, pyRepr(s), "%q", s)
	}
}

func TestPyQuoting(t *testing.T) {
	require.Equal(t, "a%20b%2Fc~_.-", pyQuote("a b/c~_.-", ""))
	require.Equal(t, "a%20b/c", pyQuote("a b/c", "/"))
	require.Equal(t, "%C3%A9%E2%82%AC", pyQuote("é€", ""))
	require.Equal(t, "a+b%2Bc", pyQuotePlus("a b+c"))
	require.Equal(t, "a%2Bc", pyQuotePlus("a+c"))
	for s, want := range map[string]string{
		"abc": "abc", "%41%42": "AB", "%zz%4": "%zz%4", "%": "%", "%C3%A9": "é",
		"%E2%9C": "\ufffd", "%E2%9CA": "\ufffdA", "%ED%A0%80": "\ufffd\ufffd\ufffd", "%C0%80": "\ufffd\ufffd",
		"%F0%9F%98%E2%9C%93": "\ufffd✓", "%C3é%A9": "\ufffdé\ufffd", "é%41": "éA",
	} {
		require.Equal(t, want, pyUnquote(s), "%q", s)
	}
}

func TestPyIPAddress(t *testing.T) {
	for s, want := range map[string]bool{
		"1.2.3.4": true, "0.0.0.0": true, "255.255.255.255": true, "256.1.1.1": false, "01.2.3.4": false,
		"1.2.3": false, "1.2.3.4.5": false, "1..3.4": false, "١.2.3.4": false, "1.2.3.4 ": false,
	} {
		require.Equal(t, want, pyIPv4(s), s)
	}
	for s, want := range map[string]bool{
		"::1": true, "::": true, "1::": true, "fe80::1%eth0": true, "fe80::1%": false, "fe80::1%a%b": false,
		"1:2:3:4:5:6:7:8": true, "1:2:3:4:5:6:7": false, "1:2:3:4:5:6:7:8:9": false, "1::2::3": false,
		"::ffff:1.2.3.4": true, "::ffff:1.2.3.04": false, "1:2:3:4:5:6:1.2.3.4": true, "12345::": false,
		":1:2:3:4:5:6:7": false, "1:2:3:4:5:6:7:": false, "1:2:3:4:5:6:7::": true, "::1:2:3:4:5:6:7": true,
		"::1:2:3:4:5:6:7:8": false, "a:b": false, "g::": false, "": false,
	} {
		require.Equal(t, want, pyIPv6(s), s)
	}
	require.Equal(t, "", checkBracketedNetloc("u@[::1]:5"))
	require.Equal(t, "Invalid IPv6 URL", checkBracketedNetloc("h1:1,[::1]:2"))
	require.Equal(t, "Invalid IPv6 URL", checkBracketedNetloc("[::1]x"))
	require.Equal(t, "An IPv4 address cannot be in brackets", checkBracketedNetloc("[1.2.3.4]"))
	require.Equal(t, "IPvFuture address is invalid", checkBracketedNetloc("[v1]"))
	require.Equal(t, "", checkBracketedNetloc("[v1f.x]"))
	require.Equal(t, "'h' does not appear to be an IPv4 or IPv6 address", checkBracketedNetloc("[::1]:1,u@h"))
}
