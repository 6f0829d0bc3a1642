package envelope

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRequestMapOrder(t *testing.T) {
	r := Request{Method: "ping", Args: NewMap("arg", "hi"), Version: "1.2"}
	require.Equal(t, []string{"method", "args", "version"}, r.Map().Keys())
	r.Namespace = "ns"
	require.Equal(t, []string{"method", "args", "namespace", "version"}, r.Map().Keys())
	require.Equal(t, []string{"method", "args"}, Request{Method: "m"}.Map().Keys())
	require.Equal(t, "1.0", Request{}.DispatchVersion())
}

func TestParseRequestErrors(t *testing.T) {
	for _, bad := range []any{nil, "x", []any{}, NewMap("method", int64(1)), NewMap("method", "m", "args", []any{}), NewMap("method", "m", "version", 1.5)} {
		_, err := ParseRequest(bad)
		require.ErrorIs(t, err, ErrDecode, Repr(bad))
	}
	r, err := ParseRequest(NewMap("method", "m", "namespace", nil))
	require.NoError(t, err)
	require.Equal(t, 0, r.Args.Len())
}

func TestDecodePairShape(t *testing.T) {
	for _, in := range []string{`[1]`, `[1, 2, 3]`, `{"a": 1}`, `"x"`, `null`} {
		_, _, err := DecodePair(JSON, []byte(in))
		require.ErrorIs(t, err, ErrDecode, in)
		require.Contains(t, err.Error(), "payload is", in)
	}
	_, _, err := DecodePair(JSON, []byte(`[1, `))
	require.ErrorIs(t, err, ErrDecode)
}

func TestReplyRoundTrip(t *testing.T) {
	for _, c := range []Codec{JSON, Msgpack} {
		b, err := EncodeReply(c, NewMap("pong", "hi"), nil)
		require.NoError(t, err)
		body, remote, err := DecodeReply(c, b)
		require.NoError(t, err)
		require.Nil(t, remote)
		require.True(t, Equal(NewMap("pong", "hi"), body))

		b, err = EncodeReply(c, nil, NoSuchMethodError("frob"))
		require.NoError(t, err)
		_, remote, err = DecodeReply(c, b)
		require.NoError(t, err)
		require.ErrorIs(t, remote, ErrNoSuchMethod)
		require.Equal(t, "Endpoint does not support RPC method frob", remote.Message)

		// An empty failure string is not raised, as in the reference.
		b, err = AppendPair(c, nil, "ok", "")
		require.NoError(t, err)
		body, remote, err = DecodeReply(c, b)
		require.NoError(t, err)
		require.Nil(t, remote)
		require.Equal(t, "ok", body)

		b, err = AppendPair(c, nil, nil, NewMap("class", "X"))
		require.NoError(t, err)
		_, _, err = DecodeReply(c, b)
		require.ErrorIs(t, err, ErrDecode)
	}
}

func TestFailureJSONForm(t *testing.T) {
	f, err := MarshalFailure(ValueError("kaboom: sp\u00e9cial \u2603"))
	require.NoError(t, err)
	require.Equal(t, `{"class": "ValueError", "module": "builtins", "message": "kaboom: sp\u00e9cial \u2603", "tb": ["Traceback (most recent call last):\n", "ValueError: kaboom: sp\u00e9cial \u2603\n"], "args": ["kaboom: sp\u00e9cial \u2603"], "kwargs": {}}`, f)

	f, err = MarshalFailure(NoSuchMethodError("x"))
	require.NoError(t, err)
	require.Contains(t, f, `"oslo_messaging.rpc.dispatcher.NoSuchMethod: Endpoint does not support RPC method x\n"`)
}

func TestToRemoteError(t *testing.T) {
	require.Equal(t, "RuntimeError", ToRemoteError(errors.New("x")).Class)
	require.Equal(t, "NoSuchMethod", ToRemoteError(fmt.Errorf("w: %w", ErrNoSuchMethod)).Class)
	re := ToRemoteError(Expected(&RemoteError{Class: "Foo_Remote", Module: "m_Remote"}))
	require.Equal(t, "Foo", re.Class)
	require.Equal(t, "m", re.Module)
	re = ToRemoteError(&RemoteError{Class: "Foo_Remote", Module: "m"})
	require.Equal(t, "Foo_Remote", re.Class, "suffix stays unless both carry it")
	require.ErrorIs(t, Expected(ValueError("v")), ErrExpectedException)
	require.Nil(t, Expected(nil))
}

func TestRemoteDeliveryFailure(t *testing.T) {
	// A server whose own send failed raises oslo_messaging.MessageDeliveryFailure.
	re := NewRemoteError(ModuleOsloExc, "MessageDeliveryFailure", "Unable to connect")
	require.ErrorIs(t, re, ErrMessageDeliveryFailure)
	require.NotErrorIs(t, re, ErrMessageUndeliverable)
	require.NotErrorIs(t, NewRemoteError(ModuleBuiltins, "MessageDeliveryFailure", "x"), ErrMessageDeliveryFailure)
}

func TestParseFailureErrors(t *testing.T) {
	for _, bad := range []string{``, `[]`, `{"class": 1}`, `{"tb": "x"}`, `{"tb": [1]}`, `{"args": {}}`, `{"kwargs": []}`, `{"class": "X"`} {
		_, err := ParseFailure(bad)
		require.ErrorIs(t, err, ErrDecode, bad)
		var de *DecodeError
		require.True(t, errors.As(err, &de))
		require.Equal(t, "failure", de.Codec)
	}
	re, err := ParseFailure(`{}`)
	require.NoError(t, err, "missing keys are tolerated like dict.get")
	require.Equal(t, "", re.Class)
}

func TestNotificationTimestamp(t *testing.T) {
	ts := time.Date(2026, 11, 24, 21, 30, 52, 37461000, time.UTC)
	require.Equal(t, "2026-11-24 21:30:52.037461", FormatTimestamp(ts))
	require.Equal(t, "2026-11-24 21:30:52", FormatTimestamp(ts.Truncate(time.Second)))
	require.Equal(t, "2026-11-24 21:30:52", FormatTimestamp(ts.Truncate(time.Second).Add(999*time.Nanosecond)))
}

func TestNormalizePriority(t *testing.T) {
	for in, want := range map[string]string{"info": "INFO", "warning": "WARN", "WARN": "WARN", "sample": "SAMPLE"} {
		got, err := NormalizePriority(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := NormalizePriority("loud")
	require.Error(t, err)
}

func TestNotificationMap(t *testing.T) {
	n := Notification{MessageID: "id", PublisherID: "p", EventType: "e", Priority: "INFO", Payload: NewMap("a", int64(1)), Timestamp: "t"}
	require.Equal(t, []string{"message_id", "publisher_id", "event_type", "priority", "payload", "timestamp"}, n.Map().Keys())
	back, err := ParseNotification(n.Map())
	require.NoError(t, err)
	require.True(t, Equal(n.Payload, back.Payload))
	back.Payload = n.Payload
	require.Equal(t, n, back)
	_, err = ParseNotification(NewMap("priority", int64(3)))
	require.ErrorIs(t, err, ErrDecode)
}
