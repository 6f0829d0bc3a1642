package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoTranscript(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"demo"}, &out, &errb), errb.String())
	s := out.String()
	// The frames a Python client writes for the same call.
	require.Contains(t, s, `[4] "[{\"user\": \"alice\", \"roles\": [\"admin\"]}, {\"method\": \"echo\", \"args\": {\"greeting\": \"h\\u00e9llo \\ud83d\\ude80\", \"when\": \"2017-03-14T15:09:26.535897\"}, \"version\": \"1.0\"}]"`)
	require.Contains(t, s, "[ROUTER/demo/srv1 ROUTER/demo]")
	require.Contains(t, s, "ROUTER/notifications.info")
	require.Contains(t, s, "errors.Is(err, ErrNoSuchMethod) = true")
	require.True(t, strings.HasSuffix(strings.TrimSpace(s), "by `make test`)."))
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 2, run([]string{"frobnicate"}, &out, &errb))
	require.Contains(t, errb.String(), "unknown command")
	require.Equal(t, 2, run(nil, &out, &errb))
}
