package rabbittest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goslo/goslo/internal/redistest"
)

// Where Debian's rabbitmq-server package puts the scripts. The wrappers in
// /usr/sbin would su to the rabbitmq user and use /var/lib/rabbitmq.
const (
	libBin = "/usr/lib/rabbitmq/bin"
	// StartTimeout bounds one node's boot (a 2-core CI machine boots a
	// fresh node in about 5 s; a cluster boots three at once).
	StartTimeout = 120 * time.Second
	// markerVar is set in the environment of every process a Node or an
	// epmd starts; children inherit it, so the package finds them all
	// (even those re-parented to init) when it stops the node.
	markerVar = "GOSLO_RABBITTEST"
)

// Option configures Start.
type Option func(*config)

type config struct {
	tls     bool
	plugins []string
	conf    []string
	cookie  string
	epmd    *epmd
}

// WithTLS adds an AMQPS listener (Node.TLSPort) using a CA, server and
// client certificate generated for the test (Node.TLS). Clients may
// present the client certificate; the node verifies it when they do.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithPlugins enables the named plugins (the default is none, for speed).
func WithPlugins(names ...string) Option {
	return func(c *config) { c.plugins = append(c.plugins, names...) }
}

// WithConfig appends rabbitmq.conf lines (sysctl format), e.g.
// "heartbeat = 4".
func WithConfig(lines ...string) Option {
	return func(c *config) { c.conf = append(c.conf, lines...) }
}

// Node is one private rabbitmq-server node.
type Node struct {
	// Name is the Erlang node name, goslo-<random>@localhost.
	Name string
	// Port is the AMQP port on 127.0.0.1; TLSPort the AMQPS one (0
	// without WithTLS).
	Port, TLSPort int
	// DistPort is the Erlang distribution port, EpmdPort epmd's.
	DistPort, EpmdPort int
	// Dir holds home (with .erlang.cookie), data, log and the config.
	Dir string
	// TLS holds the generated certificates (nil without WithTLS).
	TLS *TLSFiles
	// StartupTime is how long the last (re)start took until the node
	// accepted AMQP and rabbitmqctl await_startup returned.
	StartupTime time.Duration

	t       testing.TB
	env     []string // server environment
	ctlEnv  []string // rabbitmqctl environment
	marker  string
	epmd    *epmd
	ownEpmd bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start boots a fresh node and stops it (and its epmd) when the test ends.
func Start(t testing.TB, opts ...Option) *Node {
	t.Helper()
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := newNode(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	return n
}

func newNode(t testing.TB, cfg config) (*Node, error) {
	server := filepath.Join(libBin, "rabbitmq-server")
	if _, err := os.Stat(server); err != nil {
		t.Fatalf("rabbitmq-server NOT FOUND (%v): the RabbitMQ tests need Debian's rabbitmq-server package (make deps installs it)", err)
	}
	if _, err := exec.LookPath("epmd"); err != nil {
		t.Fatalf("epmd NOT FOUND (%v): it comes with erlang, a dependency of rabbitmq-server (make deps)", err)
	}
	id := randHex(6)
	dir := t.TempDir()
	n := &Node{
		Name:     "goslo-" + id + "@localhost",
		Port:     FreePort(t),
		DistPort: FreePort(t),
		Dir:      dir,
		t:        t,
		marker:   "node-" + id,
	}
	for _, d := range []string{"home", "data", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	cookie := cfg.cookie
	if cookie == "" {
		cookie = strings.ToUpper(randHex(16))
	}
	// RabbitMQ 3.10 server and CLI both read $HOME/.erlang.cookie
	// (RABBITMQ_ERLANG_COOKIE is deprecated and only honoured by some
	// tools), so each node gets its own HOME.
	if err := os.WriteFile(filepath.Join(dir, "home", ".erlang.cookie"), []byte(cookie), 0o400); err != nil {
		return nil, err
	}
	plugins := "[" + strings.Join(cfg.plugins, ",") + "]."
	if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte(plugins), 0o600); err != nil {
		return nil, err
	}
	conf := []string{
		"loopback_users.guest = true",
		"log.file.level = info",
		"log.console = false",
	}
	if cfg.tls {
		files, err := generateTLS(filepath.Join(dir, "tls"))
		if err != nil {
			return nil, err
		}
		n.TLS = files
		n.TLSPort = FreePort(t)
		conf = append(conf,
			fmt.Sprintf("listeners.ssl.default = 127.0.0.1:%d", n.TLSPort),
			"ssl_options.cacertfile = "+files.CACert,
			"ssl_options.certfile = "+files.ServerCert,
			"ssl_options.keyfile = "+files.ServerKey,
			"ssl_options.verify = verify_peer",
			"ssl_options.fail_if_no_peer_cert = false",
		)
	}
	conf = append(conf, cfg.conf...)
	if err := os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}

	if cfg.epmd != nil {
		n.epmd = cfg.epmd
	} else {
		e, err := startEpmd(t)
		if err != nil {
			return nil, err
		}
		n.epmd, n.ownEpmd = e, true
	}
	n.EpmdPort = n.epmd.port

	base := []string{
		"HOME=" + filepath.Join(dir, "home"),
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"ERL_EPMD_PORT=" + strconv.Itoa(n.EpmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"), // absent: /etc/rabbitmq is not read
		"RABBITMQ_NODENAME=" + n.Name,
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "data"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_PLUGINS_EXPAND_DIR=" + filepath.Join(dir, "data", "plugins-expand"),
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "data", "rabbit.pid"),
	}
	n.env = append(append([]string{}, base...),
		markerVar+"="+n.marker,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.DistPort),
		// Distribution on loopback only; epmd is ours and already up.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
	)
	n.ctlEnv = append(append([]string{}, base...),
		markerVar+"=ctl-"+id,
		"RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
		// 0..0: the kernel picks a free port for each CLI run (the
		// default range 35672-35682 is shared by every node on the host).
		"RABBITMQ_CTL_DIST_PORT_MIN=0",
		"RABBITMQ_CTL_DIST_PORT_MAX=0",
	)
	t.Cleanup(n.cleanup)
	return n, nil
}

func (n *Node) cleanup() {
	n.Kill()
	if n.ownEpmd {
		n.epmd.stop(n.t)
	}
}

// start runs rabbitmq-server and waits until the node is up. It returns
// an error (with the log's tail) rather than failing, for StartCluster's
// goroutines.
func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("node %s is already running", n.Name)
	}
	began := time.Now()
	cmd := exec.Command(filepath.Join(libBin, "rabbitmq-server"))
	cmd.Env = n.env
	cmd.Dir = n.Dir
	out, err := os.OpenFile(filepath.Join(n.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start rabbitmq-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	n.cmd, n.done = cmd, done

	deadline := time.Now().Add(StartTimeout)
	for {
		if err := probeAMQP(fmt.Sprintf("127.0.0.1:%d", n.Port)); err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("rabbitmq-server %s exited during start-up:\n%s", n.Name, n.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rabbitmq-server %s did not accept AMQP on %d within %v:\n%s", n.Name, n.Port, StartTimeout, n.logTail())
		}
	}
	if _, err := n.ctl(StartTimeout, "await_startup"); err != nil {
		return fmt.Errorf("rabbitmqctl await_startup: %w\n%s", err, n.logTail())
	}
	n.StartupTime = time.Since(began)
	return nil
}

// probeAMQP sends the AMQP 0-9-1 protocol header and expects the first
// frame of connection.start (method frame, channel 0, class 10 method 10).
func probeAMQP(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	return probeConn(c)
}

func probeConn(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		return err
	}
	var h [11]byte
	if _, err := readFull(c, h[:]); err != nil {
		return err
	}
	if h[0] != 1 || h[1] != 0 || h[2] != 0 || !bytes.Equal(h[7:11], []byte{0, 10, 0, 10}) {
		return fmt.Errorf("not a connection.start: % x", h)
	}
	return nil
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (n *Node) logTail() string {
	var b strings.Builder
	for _, f := range []string{filepath.Join(n.Dir, "log", "stdout.log"), filepath.Join(n.Dir, "log", n.Name+".log")} {
		data, _ := os.ReadFile(f)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", f, data)
	}
	return b.String()
}

// Running reports whether the node's processes are up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Stop shuts the node down gracefully (SIGTERM; SIGKILL after 30 s) and
// checks that none of its processes is left. Its data stays for Restart.
func (n *Node) Stop() { n.stop(syscall.SIGTERM, 30*time.Second) }

// Kill stops the node with SIGKILL to every one of its processes (a
// crash: nothing is flushed), and checks that none is left.
func (n *Node) Kill() { n.stop(syscall.SIGKILL, 0) }

func (n *Node) stop(sig syscall.Signal, grace time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	if sig == syscall.SIGKILL {
		killMarked(n.marker) // beam.smp and its helpers at once
	} else {
		_ = n.cmd.Process.Signal(sig) // the script forwards TERM to beam.smp
	}
	if sig == syscall.SIGKILL {
		grace = 10 * time.Second // the script exits once beam.smp is gone
	}
	select {
	case <-n.done:
	case <-time.After(grace):
		n.t.Logf("rabbittest: %s did not stop within %v of %v; killing it", n.Name, grace, sig)
	}
	killMarked(n.marker) // what is left: helpers re-parented to init, or a stuck beam
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd, n.done = nil, nil
	if left := waitGone(n.marker, 10*time.Second); len(left) > 0 {
		n.t.Errorf("rabbittest: processes of %s still running after stop: %v", n.Name, left)
	}
}

// Restart stops the node gracefully (if it runs) and starts it again with
// the same name, ports, cookie and data.
func (n *Node) Restart() {
	n.t.Helper()
	n.Stop()
	if err := n.start(); err != nil {
		n.t.Fatal(err)
	}
}

// StartAgain starts a stopped or killed node with the same name, ports,
// cookie and data.
func (n *Node) StartAgain() {
	n.t.Helper()
	if err := n.start(); err != nil {
		n.t.Fatal(err)
	}
}

// Addr is the AMQP address, 127.0.0.1:<Port>.
func (n *Node) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// URL is the oslo.messaging transport URL rabbit://guest:guest@127.0.0.1:<port>/<vhost>
// ("" or "/" is the default vhost). guest may only connect over loopback,
// which is all this package uses.
func (n *Node) URL(vhost string) string { return n.userURL("rabbit", "guest", "guest", n.Port, vhost) }

// AMQPURL is the same in the amqp:// scheme of other AMQP clients.
func (n *Node) AMQPURL(vhost string) string {
	return n.userURL("amqp", "guest", "guest", n.Port, vhost)
}

// AMQPSURL is the amqps:// URL of the TLS listener (WithTLS).
func (n *Node) AMQPSURL(vhost string) string {
	return n.userURL("amqps", "guest", "guest", n.TLSPort, vhost)
}

// UserURL is URL for another user (see AddUser).
func (n *Node) UserURL(user, password, vhost string) string {
	return n.userURL("rabbit", user, password, n.Port, vhost)
}

func (n *Node) userURL(scheme, user, password string, port int, vhost string) string {
	path := ""
	if vhost != "" && vhost != "/" {
		path = url.PathEscape(vhost)
	}
	return fmt.Sprintf("%s://%s:%s@127.0.0.1:%d/%s", scheme, url.PathEscape(user), url.PathEscape(password), port, path)
}

// Ctl runs rabbitmqctl against this node (-n is added) and returns its
// standard output; a failure fails the test.
func (n *Node) Ctl(args ...string) string {
	n.t.Helper()
	out, err := n.ctl(60*time.Second, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// TryCtl is Ctl returning the error instead of failing.
func (n *Node) TryCtl(args ...string) (string, error) { return n.ctl(60*time.Second, args...) }

func (n *Node) ctl(timeout time.Duration, args ...string) (string, error) {
	return n.runCLI(timeout, "rabbitmqctl", args...)
}

// CLI runs another RabbitMQ CLI tool (rabbitmq-queues, rabbitmq-diagnostics,
// rabbitmq-plugins …) against this node.
func (n *Node) CLI(tool string, args ...string) string {
	n.t.Helper()
	out, err := n.runCLI(60*time.Second, tool, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func (n *Node) runCLI(timeout time.Duration, tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(libBin, tool), append([]string{"-n", n.Name}, args...)...)
	cmd.Env = n.ctlEnv
	cmd.Dir = n.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", tool, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// AddVhost creates vhost and gives guest full permissions on it.
func (n *Node) AddVhost(vhost string) {
	n.t.Helper()
	n.Ctl("add_vhost", vhost)
	n.Ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
}

// AddUser creates a user with full permissions on the given vhosts.
func (n *Node) AddUser(user, password string, vhosts ...string) {
	n.t.Helper()
	n.Ctl("add_user", user, password)
	for _, v := range vhosts {
		n.Ctl("set_permissions", "-p", v, user, ".*", ".*", ".*")
	}
}

// Row is one object of rabbitmqctl's JSON output. Numbers are json.Number;
// "arguments" is rabbitmqctl's list of [name, type, value] triples (type
// "signedint" is AMQP field type I, "longstr" S, "bool" t …).
type Row = map[string]any

// Default columns, those of the captured vectors' topology snapshots.
var (
	QueueColumns    = []string{"name", "type", "durable", "auto_delete", "exclusive", "arguments", "messages", "consumers", "policy"}
	ExchangeColumns = []string{"name", "type", "durable", "auto_delete", "internal", "arguments"}
	BindingColumns  = []string{"source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"}
	ConsumerColumns = []string{"queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count", "active", "arguments"}
	ChannelColumns  = []string{"name", "pid", "connection", "number", "user", "vhost", "confirm", "prefetch_count", "global_prefetch_count", "consumer_count", "messages_unacknowledged", "transactional"}
)

// List runs `rabbitmqctl <command> -p vhost --formatter json [columns]`
// and parses the result.
func (n *Node) List(command, vhost string, columns ...string) []Row {
	n.t.Helper()
	args := []string{command, "--formatter", "json", "--quiet"}
	if vhost != "" {
		args = append(args, "-p", vhost)
	}
	out := n.Ctl(append(args, columns...)...)
	var rows []Row
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		n.t.Fatalf("rabbitmqctl %s: unreadable JSON (%v): %q", command, err, out)
	}
	return rows
}

// ListQueues lists the queues of vhost with QueueColumns, or the given ones.
func (n *Node) ListQueues(vhost string, columns ...string) []Row {
	n.t.Helper()
	return n.List("list_queues", vhost, or(columns, QueueColumns)...)
}

// ListExchanges lists the exchanges of vhost (the amq.* and default ones
// included).
func (n *Node) ListExchanges(vhost string, columns ...string) []Row {
	n.t.Helper()
	return n.List("list_exchanges", vhost, or(columns, ExchangeColumns)...)
}

// ListBindings lists the bindings of vhost (the default exchange's
// implicit ones included).
func (n *Node) ListBindings(vhost string, columns ...string) []Row {
	n.t.Helper()
	return n.List("list_bindings", vhost, or(columns, BindingColumns)...)
}

// ListConsumers lists the consumers of vhost.
func (n *Node) ListConsumers(vhost string, columns ...string) []Row {
	n.t.Helper()
	return n.List("list_consumers", vhost, or(columns, ConsumerColumns)...)
}

// ListChannels lists the channels of vhost (list_channels has no -p: the
// rows are filtered on their vhost column, which is always requested).
func (n *Node) ListChannels(vhost string, columns ...string) []Row {
	n.t.Helper()
	cols := or(columns, ChannelColumns)
	if !contains(cols, "vhost") {
		cols = append(append([]string{}, cols...), "vhost")
	}
	var rows []Row
	for _, r := range n.List("list_channels", "", cols...) {
		if vhost == "" || r["vhost"] == vhost {
			rows = append(rows, r)
		}
	}
	return rows
}

// ListConnections lists all client connections.
func (n *Node) ListConnections(columns ...string) []Row {
	n.t.Helper()
	return n.List("list_connections", "", or(columns, []string{"name", "user", "vhost", "state", "client_properties"})...)
}

// Alarms returns the node's resource alarms as rabbitmq prints them
// (e.g. "{resource_limit,memory,'goslo-…@localhost'}"); none → empty.
func (n *Node) Alarms() []string {
	n.t.Helper()
	out := strings.TrimSpace(n.Ctl("eval", "[lists:flatten(io_lib:format(\"~p\", [A])) || A <- rabbit_alarm:get_alarms()]."))
	var alarms []string
	for _, m := range strings.Split(strings.Trim(out, "[]"), "\",\"") {
		if m = strings.Trim(strings.TrimSpace(m), "\""); m != "" {
			alarms = append(alarms, m)
		}
	}
	return alarms
}

// SetMemoryAlarm raises (watermark 0: every publisher is blocked, and
// connections that announced the capability get connection.blocked) or
// clears (watermark back to the default 0.4) the node's memory alarm and
// waits until the alarm state is what was asked.
func (n *Node) SetMemoryAlarm(on bool) {
	n.t.Helper()
	w := "0.4"
	if on {
		w = "0"
	}
	n.Ctl("set_vm_memory_high_watermark", w)
	deadline := time.Now().Add(30 * time.Second)
	for {
		has := false
		for _, a := range n.Alarms() {
			has = has || strings.Contains(a, "memory")
		}
		if has == on {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("memory alarm of %s did not become %v", n.Name, on)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// EnableFirehose turns the firehose tracer on for vhost: every publish and
// delivery is copied to the exchange amq.rabbitmq.trace (routing keys
// publish.<exchange>, deliver.<queue>).
func (n *Node) EnableFirehose(vhost string) {
	n.t.Helper()
	n.Ctl("trace_on", "-p", vhost)
}

func or(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// FreePort is a port free on 127.0.0.1 (redistest.FreePort).
func FreePort(t testing.TB) int { return redistest.FreePort(t) }

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
