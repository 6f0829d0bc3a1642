package compat

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTargetStrings(t *testing.T) {
	srv := Target{Topic: "compute", Server: "node-1@lvm"}
	fan := Target{Topic: "compute", Server: "node-1@lvm", Fanout: true}
	topic := Target{Topic: "compute"}

	require.Equal(t, "node-1", ServerName("node-1@lvm@x"))
	require.Equal(t, "", ServerName("@x"))
	require.Equal(t, "compute/node-1", TargetToKey(srv))
	require.Equal(t, "compute", TargetToKey(fan))
	require.Equal(t, "compute", TargetToKey(topic))
	require.Equal(t, "t/", TargetToKey(Target{Topic: "t", Server: "@b"}))

	require.Equal(t, "ROUTER/compute/node-1", PrefixedKey(Router, "compute/node-1"))
	require.Equal(t, "ROUTER/compute/node-1", TargetKey(Router, srv))
	require.Equal(t, "DEALER/compute", TargetKey(Dealer, fan))
	require.Equal(t, "DEALER/compute", TopicKey(Dealer, srv))
	require.Equal(t, []string{"ROUTER/compute/node-1", "ROUTER/compute"}, RegistrationKeys(Router, srv))
	require.Equal(t, []string{"ROUTER/compute", "ROUTER/compute"}, RegistrationKeys(Router, fan), "register() of a fanout server target adds L/topic twice")
	require.Equal(t, []string{"DEALER/compute"}, RegistrationKeys(Dealer, topic))

	require.Equal(t, "notifications.info", NotificationTopic("notifications", "INFO"))
	require.Equal(t, "notifications.warn", NotificationTopic("notifications", "Warn"))

	require.Equal(t, "10.0.0.5:49200", HostPort("10.0.0.5", 49200))

	rec := PublisherRecord("10.0.0.9:50003", "10.0.0.9:50001")
	require.Equal(t, "10.0.0.9:50003,10.0.0.9:50001", rec)
	for member, want := range map[string][3]any{
		rec:           {"10.0.0.9:50003", "10.0.0.9:50001", true},
		"a:1":         {"a:1", "", false},
		"a:1,b:2,c:3": {"a:1", "b:2", false},
		",":           {"", "", true},
		"":            {"", "", false},
	} {
		pub, fe, ok := ParsePublisherRecord(member)
		require.Equal(t, want, [3]any{pub, fe, ok}, member)
	}
	require.Equal(t, "PUBLISHERS", PublishersKey)
	require.Equal(t, "ROUTERS", RoutersKey)
	require.Equal(t, " ", LivenessMember)
}

func TestTargetString(t *testing.T) {
	require.Equal(t, "<Target >", Target{}.String())
	require.Equal(t, "<Target topic=t, server=s, fanout=True>", Target{Topic: "t", Server: "s", Fanout: true}.String())
	require.Equal(t, "<Target exchange=e, topic=t, namespace=n, version=1.2, server=s>",
		Target{Exchange: "e", Topic: "t", Namespace: "n", Version: "1.2", Server: "s", LegacyNamespaces: []string{"x"}}.String())
}

func TestTargetValidate(t *testing.T) {
	const (
		noTopic  = "A topic is required to send"
		fanout   = "A call cannot be used with fanout"
		listen   = "A server's target must have topic and server names specified"
		notifLis = "A target must have topic specified"
	)
	for _, c := range []struct {
		target Target
		use    Use
		want   string
	}{
		{Target{}, UseCast, noTopic},
		{Target{}, UseCall, noTopic},
		{Target{Fanout: true}, UseCall, fanout}, // the fanout check comes first
		{Target{Topic: "t", Fanout: true}, UseCall, fanout},
		{Target{Topic: "t", Fanout: true}, UseCast, ""},
		{Target{Topic: "t", Server: "s"}, UseCall, ""},
		{Target{}, UseNotify, noTopic},
		{Target{Topic: "t.info"}, UseNotify, ""},
		{Target{Topic: "t"}, UseListen, listen},
		{Target{Server: "s"}, UseListen, listen},
		{Target{Topic: "t", Server: "s", Fanout: true}, UseListen, ""},
		{Target{Server: "s"}, UseListenNotifications, notifLis},
		{Target{Topic: "t"}, UseListenNotifications, ""},
	} {
		err := c.target.Validate(c.use)
		if c.want == "" {
			require.NoError(t, err, "%s %d", c.target, c.use)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidTarget)
		var te *InvalidTargetError
		require.True(t, errors.As(err, &te))
		require.Equal(t, c.want, te.Reason)
		require.Equal(t, c.want+":"+c.target.String(), te.PythonMessage())
		require.Equal(t, "InvalidTarget", te.PythonClass())
		require.True(t, strings.HasPrefix(err.Error(), "compat: "+c.want))
	}
	require.ErrorIs(t, Target{Topic: "t", Fanout: true}.ValidateSend(true), ErrInvalidTarget)
	require.NoError(t, Target{Topic: "t", Fanout: true}.ValidateSend(false))
	require.ErrorIs(t, Target{Topic: "t"}.ValidateListen(), ErrInvalidTarget)
	require.NoError(t, Target{Topic: "t", Server: "s"}.ValidateListen())
}
