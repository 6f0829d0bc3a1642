package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoTranscript(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"demo"}, nil, &out, &errb), errb.String())
	s := out.String()
	require.Contains(t, s, "on srv1 -> {\"greeting\": \"h\u00e9llo\", \"n\": 42}")
	require.Contains(t, s, `srv1 got [{"seq": 1}]`)
	require.Contains(t, s, `srv2 got [{"to": "all"}], srv3 got [{"to": "all"}]`)
	require.Contains(t, s, "builtins.ValueError: kaboom")
	require.Contains(t, s, "NoSuchMethod: true")
	require.Contains(t, s, "listener got compute.instance.create.end from compute.host-1")
	require.True(t, strings.HasSuffix(strings.TrimSpace(s), "unregistered."))
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 2, run([]string{"frobnicate"}, nil, &out, &errb))
	require.Contains(t, errb.String(), "unknown command")
	require.Equal(t, 2, run(nil, nil, &out, &errb))
}
