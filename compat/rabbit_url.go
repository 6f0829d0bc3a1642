package compat

import (
	"net"
	"strconv"
)

// Defaults kombu's py-amqp transport fills in for every empty part of a
// broker address (kombu/transport/pyamqp.py default_connection_params).
const (
	DefaultAMQPPort     = 5672
	DefaultAMQPUser     = "guest"
	DefaultAMQPPassword = "guest"
	DefaultAMQPHost     = "localhost"
	DefaultVirtualHost  = "/"
)

// AMQPHost is one broker of a rabbit transport URL as the 18.3.1 driver
// hands it to kombu: every part that is empty or missing in the URL holds
// kombu's default (guest, guest, localhost, 5672), each part on its own:
// "bob@h" connects as bob with password guest.
type AMQPHost struct {
	Host     string // name or address; an IPv6 address without brackets
	Port     int
	Username string
	Password string
}

// Addr is host:port for net.Dial, with brackets around an IPv6 address.
// (urllib accepts a bracketed host only after the last "@" of the netloc,
// so "h1,[::1]" is refused while "h1,u@[::1]" is not; see ParseTransportURL.)
func (h AMQPHost) Addr() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// RabbitURL is what the rabbit driver connects to: the brokers in URL order
// (the driver shuffles them once per connection, rabbit-wire.md §2.1) and
// the virtual host of connection.open.
type RabbitURL struct {
	Hosts       []AMQPHost
	VirtualHost string
}

// Rabbit reads a transport URL of the rabbit driver (scheme "rabbit" or its
// alias "kombu"; rabbit-wire.md §2.1): hosts as parsed (credentials already
// percent-decoded, "[v6]:port" unbracketed) with kombu's defaults for empty
// parts, and one host guest:guest@localhost:5672 when the URL has none; the
// virtual host is the percent-decoded path without its leading "/", the
// broker default "/" when that is empty ("/nova" gives "nova", "/%2Fnova"
// gives "/nova"). The query is not looked at: Config.ApplyRabbitURLQuery
// applies it. "kombu+<transport>" (another kombu transport, experimental in
// oslo) and every other scheme are refused with a *URLError of Class "".
func (u *TransportURL) Rabbit() (*RabbitURL, error) {
	if u.Transport != "rabbit" && u.Transport != "kombu" {
		return nil, &URLError{URL: u.String(), Reason: "transport " + strconv.Quote(u.Transport) +
			" is not the rabbit driver (rabbit:// or kombu://)"}
	}
	r := &RabbitURL{VirtualHost: u.VirtualHost}
	if r.VirtualHost == "" {
		r.VirtualHost = DefaultVirtualHost
	}
	for _, h := range u.Hosts {
		if h.Port < 0 || h.Port > 65535 {
			// Only a TransportURL built in Go gets here: ParseTransportURL
			// refuses such a port. 0 is kombu's default port.
			return nil, &URLError{URL: u.String(), Reason: "port " + strconv.Itoa(h.Port) + " is not a TCP port (1..65535)"}
		}
		a := AMQPHost{Host: h.Hostname, Port: h.Port, Username: h.Username, Password: h.Password}
		if a.Host == "" {
			a.Host = DefaultAMQPHost
		}
		if a.Port == 0 {
			a.Port = DefaultAMQPPort
		}
		if a.Username == "" {
			a.Username = DefaultAMQPUser
		}
		if a.Password == "" {
			a.Password = DefaultAMQPPassword
		}
		r.Hosts = append(r.Hosts, a)
	}
	if len(r.Hosts) == 0 {
		r.Hosts = []AMQPHost{{Host: DefaultAMQPHost, Port: DefaultAMQPPort, Username: DefaultAMQPUser, Password: DefaultAMQPPassword}}
	}
	return r, nil
}

// ParseRabbitURL is ParseTransportURL followed by Rabbit.
func ParseRabbitURL(raw string) (*RabbitURL, error) {
	u, err := ParseTransportURL(raw)
	if err != nil {
		return nil, err
	}
	return u.Rabbit()
}
