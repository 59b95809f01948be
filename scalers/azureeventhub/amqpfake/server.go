// Package amqpfake is an in-process Event Hubs namespace for tests: it speaks AMQP 1.0 (OASIS) over plain TCP,
// as the Azure SDK does with a connection string that says UseDevelopmentEmulator=true, and implements what a
// management client uses:
//
//   - the protocol headers and SASL (ANONYMOUS, PLAIN and MSSBCBS offered; the SDK picks ANONYMOUS);
//   - open, begin, attach, flow, transfer, disposition, detach, end and close, with session and link flow control;
//   - the claims-based-security node $cbs: put-token with a SharedAccessSignature, whose HMAC-SHA256 signature is
//     checked against the namespace's key (a wrong key, key name, audience or an expired token gets 401);
//   - the $management node: operation READ of type com.microsoft:eventhub (name, created_at, partition_count,
//     partition_ids, georeplication_factor) and com.microsoft:partition (begin_sequence_number,
//     last_enqueued_sequence_number, last_enqueued_offset, last_enqueued_time_utc, is_partition_empty), each
//     needing a valid security_token and a claim put on $cbs for <hub>/$management; status-code 200, 401, 404.
//
// The test sets each hub's partitions and sequence numbers. Tests only; production code never imports it.
package amqpfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Partition is one partition of a hub. An empty partition has Last below Begin (the service reports -1).
type Partition struct {
	ID string
	// Begin is the first sequence number still retained, Last the last one enqueued.
	Begin, Last int64
	// LastEnqueued is when the last event was enqueued.
	LastEnqueued time.Time
}

type hub struct {
	created    time.Time
	partitions []Partition
}

// Options configures a Server.
type Options struct {
	// KeyName and Key are the namespace's shared access policy (KeyName defaults to RootManageSharedAccessKey).
	KeyName, Key string
	// Now is the clock tokens' expiry is checked against (time.Now when nil).
	Now func() time.Time
}

// Server is one namespace listening on a loopback port.
type Server struct {
	opts Options
	ln   net.Listener

	mu     sync.Mutex
	hubs   map[string]*hub
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	// Management counts the $management requests answered.
	Management atomic.Int64
	// holdPartitions leaves partition reads unanswered (a namespace that stopped responding).
	holdPartitions atomic.Bool
}

// HoldPartitionReads makes the namespace take partition property requests and never answer them (on), or answer
// them again (off).
func (s *Server) HoldPartitionReads(on bool) { s.holdPartitions.Store(on) }

// Start runs a namespace until tb's test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// NewServer listens on 127.0.0.1 and serves connections until Close.
func NewServer(opts Options) (*Server, error) {
	if opts.KeyName == "" {
		opts.KeyName = "RootManageSharedAccessKey"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, ln: ln, hubs: map[string]*hub{}, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the host:port the namespace listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ConnectionString returns an emulator connection string for the namespace with the given key, and EntityPath
// when hub is not empty.
func (s *Server) ConnectionString(key, hub string) string {
	cs := fmt.Sprintf("Endpoint=sb://%s;SharedAccessKeyName=%s;SharedAccessKey=%s;UseDevelopmentEmulator=true", s.Addr(), s.opts.KeyName, key)
	if hub != "" {
		cs += ";EntityPath=" + hub
	}
	return cs
}

// SetHub creates or replaces a hub with the given partitions (IDs default to their index).
func (s *Server) SetHub(name string, partitions ...Partition) {
	ps := make([]Partition, len(partitions))
	for i, p := range partitions {
		if p.ID == "" {
			p.ID = strconv.Itoa(i)
		}
		ps[i] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hubs[name]
	if h == nil {
		h = &hub{created: s.opts.Now().UTC().Truncate(time.Millisecond)}
		s.hubs[name] = h
	}
	h.partitions = ps
}

// Close stops listening and drops every connection.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c := &conn{s: s, nc: nc, sessions: map[uint16]*session{}, claims: map[string]time.Time{}, done: make(chan struct{})}
			_ = c.serve()
			close(c.done)
			_ = nc.Close()
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
		}()
	}
}

// conn is one AMQP connection; its frames are handled in order by one goroutine.
type conn struct {
	s        *Server
	nc       net.Conn
	wmu      sync.Mutex
	sessions map[uint16]*session
	// claims are the audiences a valid token was put for on $cbs, with the token's expiry.
	claims map[string]time.Time
	done   chan struct{}
}

type session struct {
	channel        uint16
	nextIncomingID uint32
	nextOutgoingID uint32
	links          map[uint32]*link // by the client's handle
	nextHandle     uint32
}

type link struct {
	handle uint32 // the fake's handle
	// clientSends is true when the client is the sender (the fake receives requests on node).
	clientSends bool
	node        string // $cbs or $management
	replyTo     string // the target address of a client receiver
	// deliveryCount and credit follow the link's flow state (part 2, section 2.6.7).
	deliveryCount uint32
	credit        uint32
	queued        [][]byte // replies waiting for credit
	partial       []byte   // a transfer split over frames
	partialID     uint32
	partialSettle bool
}

const (
	window     = 5000
	linkCredit = 100
)

func (c *conn) write(typ byte, channel uint16, body any, payload []byte) error {
	b, err := appendFrame(nil, typ, channel, body, payload)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.nc.Write(b)
	return err
}

func (c *conn) serve() error {
	var hdr [8]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		return err
	}
	if string(hdr[:]) == string(headerSASL) {
		if err := c.sasl(); err != nil {
			return err
		}
		if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
			return err
		}
	}
	if string(hdr[:]) != string(headerAMQP) {
		_, _ = c.nc.Write(headerAMQP) // the spec's answer to an unsupported header
		return errors.New("amqp: unsupported protocol header")
	}
	if _, err := c.nc.Write(headerAMQP); err != nil {
		return err
	}
	for {
		f, err := readFrame(c.nc)
		if err != nil {
			return err
		}
		if f.code == 0 { // heartbeat
			continue
		}
		closed, err := c.handle(f)
		if err != nil || closed {
			return err
		}
	}
}

func (c *conn) sasl() error {
	if _, err := c.nc.Write(headerSASL); err != nil {
		return err
	}
	mechs := Array{Symbol("ANONYMOUS"), Symbol("PLAIN"), Symbol("MSSBCBS")}
	if err := c.write(frameSASL, 0, performative(descSASLMechanisms, mechs), nil); err != nil {
		return err
	}
	f, err := readFrame(c.nc)
	if err != nil {
		return err
	}
	if f.typ != frameSASL || f.code != descSASLInit {
		return fmt.Errorf("amqp: want sasl-init, got performative %#x", f.code)
	}
	code := uint8(0) // ok
	if m, _ := f.field(0).(Symbol); m != "ANONYMOUS" && m != "PLAIN" && m != "MSSBCBS" {
		code = 1 // auth
	}
	if err := c.write(frameSASL, 0, performative(descSASLOutcome, code), nil); err != nil {
		return err
	}
	if code != 0 {
		return errors.New("amqp: unsupported SASL mechanism")
	}
	return nil
}

func amqpError(condition, description string) Described {
	return performative(descError, Symbol(condition), description)
}

// handle processes one performative; closed reports the connection's end.
func (c *conn) handle(f frame) (closed bool, err error) {
	if f.typ != frameAMQP {
		return false, errors.New("amqp: SASL frame after SASL")
	}
	switch f.code {
	case descOpen:
		if idle, ok := f.field(4).(uint32); ok && idle > 0 {
			go c.heartbeat(time.Duration(idle) * time.Millisecond / 2)
		}
		return false, c.write(frameAMQP, 0, performative(descOpen, "tidal-amqpfake", nil, uint32(maxFrame), uint16(65535)), nil)
	case descBegin:
		next, _ := f.field(1).(uint32)
		c.sessions[f.channel] = &session{channel: f.channel, nextIncomingID: next, links: map[uint32]*link{}}
		return false, c.write(frameAMQP, f.channel, performative(descBegin, f.channel, uint32(0), uint32(window), uint32(window), uint32(1023)), nil)
	case descClose:
		_ = c.write(frameAMQP, 0, performative(descClose), nil)
		return true, nil
	}
	s := c.sessions[f.channel]
	if s == nil {
		_ = c.write(frameAMQP, 0, performative(descClose, amqpError("amqp:connection:framing-error", "frame on a channel with no session")), nil)
		return true, nil
	}
	switch f.code {
	case descEnd:
		delete(c.sessions, f.channel)
		return false, c.write(frameAMQP, f.channel, performative(descEnd), nil)
	case descAttach:
		return false, c.attach(s, f)
	case descFlow:
		return false, c.flow(s, f)
	case descTransfer:
		return false, c.transfer(s, f)
	case descDisposition:
		return false, nil // replies are sent settled; the client's dispositions need no answer
	case descDetach:
		h, _ := f.field(0).(uint32)
		l := s.links[h]
		if l == nil {
			return false, nil
		}
		delete(s.links, h)
		return false, c.write(frameAMQP, s.channel, performative(descDetach, l.handle, true), nil)
	}
	return false, fmt.Errorf("amqp: unexpected performative %#x", f.code)
}

func (c *conn) heartbeat(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.write(frameAMQP, 0, nil, nil); err != nil {
				return
			}
		}
	}
}

// terminusAddress returns the address of a source or target.
func terminusAddress(v any) string {
	d, ok := v.(Described)
	if !ok {
		return ""
	}
	fields, _ := d.Value.([]any)
	if len(fields) == 0 {
		return ""
	}
	a, _ := fields[0].(string)
	return a
}

func (c *conn) attach(s *session, f frame) error {
	name, _ := f.field(0).(string)
	h, _ := f.field(1).(uint32)
	clientReceives, _ := f.field(2).(bool)
	source, target := f.field(5), f.field(6)
	l := &link{handle: s.nextHandle, clientSends: !clientReceives}
	s.nextHandle++
	if l.clientSends {
		l.node = terminusAddress(target)
		l.deliveryCount, _ = f.field(10).(uint32)
	} else {
		l.node, l.replyTo = terminusAddress(source), terminusAddress(target)
	}
	var initialCount any
	if !l.clientSends {
		initialCount = uint32(0)
	}
	if l.node != "$cbs" && l.node != "$management" {
		// No such node: attach without a terminus, then detach with the error (part 2, section 2.6.3).
		if err := c.write(frameAMQP, s.channel, performative(descAttach, name, l.handle, !clientReceives, f.field(3), f.field(4), nil, nil, nil, nil, initialCount), nil); err != nil {
			return err
		}
		return c.write(frameAMQP, s.channel, performative(descDetach, l.handle, true,
			amqpError("amqp:not-found", fmt.Sprintf("The messaging entity '%s' could not be found.", l.node))), nil)
	}
	s.links[h] = l
	if err := c.write(frameAMQP, s.channel, performative(descAttach, name, l.handle, !clientReceives, f.field(3), f.field(4),
		source, target, nil, nil, initialCount, uint64(maxFrame)), nil); err != nil {
		return err
	}
	if l.clientSends {
		l.credit = linkCredit
		return c.sendFlow(s, l)
	}
	return nil
}

// sendFlow grants the client's sender on l fresh credit and restates the session window.
func (c *conn) sendFlow(s *session, l *link) error {
	return c.write(frameAMQP, s.channel, performative(descFlow, s.nextIncomingID, uint32(window), s.nextOutgoingID, uint32(window),
		l.handle, l.deliveryCount, l.credit), nil)
}

func (c *conn) flow(s *session, f frame) error {
	h, ok := f.field(4).(uint32)
	if !ok {
		return nil // session-only flow
	}
	l := s.links[h]
	if l == nil || l.clientSends {
		return nil
	}
	// The receiver's view: credit = delivery-count(receiver) + link-credit - delivery-count(sender).
	theirCount, ok := f.field(5).(uint32)
	if !ok {
		theirCount = 0
	}
	credit, _ := f.field(6).(uint32)
	l.credit = theirCount + credit - l.deliveryCount
	for len(l.queued) > 0 && l.credit > 0 {
		msg := l.queued[0]
		l.queued = l.queued[1:]
		if err := c.send(s, l, msg); err != nil {
			return err
		}
	}
	if echo, _ := f.field(9).(bool); echo {
		return c.write(frameAMQP, s.channel, performative(descFlow, s.nextIncomingID, uint32(window), s.nextOutgoingID, uint32(window),
			l.handle, l.deliveryCount, uint32(0)), nil)
	}
	return nil
}

func (c *conn) transfer(s *session, f frame) error {
	s.nextIncomingID++
	h, _ := f.field(0).(uint32)
	l := s.links[h]
	if l == nil || !l.clientSends {
		return c.write(frameAMQP, s.channel, performative(descEnd, amqpError("amqp:session:unattached-handle", "transfer on an unattached handle")), nil)
	}
	if id, ok := f.field(1).(uint32); ok && l.partial == nil {
		l.partialID = id
		l.partialSettle, _ = f.field(4).(bool)
	}
	l.partial = append(l.partial, f.payload...)
	if more, _ := f.field(5).(bool); more {
		return nil
	}
	payload, id, settled := l.partial, l.partialID, l.partialSettle
	l.partial = nil
	l.deliveryCount++
	l.credit--
	req, err := DecodeMessage(payload)
	if err != nil {
		return err
	}
	if !settled {
		accepted := Described{Descriptor: uint64(descAccepted), Value: []any{}}
		if err := c.write(frameAMQP, s.channel, performative(descDisposition, true, id, nil, true, accepted), nil); err != nil {
			return err
		}
	}
	l.credit = linkCredit
	if err := c.sendFlow(s, l); err != nil {
		return err
	}
	if l.node == "$management" && req.ApplicationProperties["type"] == "com.microsoft:partition" && c.s.holdPartitions.Load() {
		return nil
	}
	reply := c.answer(l.node, req)
	replyTo, _ := req.prop(4).(string)
	for _, rl := range s.links {
		if !rl.clientSends && rl.node == l.node && rl.replyTo == replyTo {
			b, err := EncodeMessage(reply)
			if err != nil {
				return err
			}
			if rl.credit == 0 {
				rl.queued = append(rl.queued, b)
				return nil
			}
			return c.send(s, rl, b)
		}
	}
	return nil // no reply link: the reply is dropped, as the service does
}

func (c *conn) send(s *session, l *link, msg []byte) error {
	id := s.nextOutgoingID
	s.nextOutgoingID++
	l.deliveryCount++
	l.credit--
	tag := []byte(strconv.FormatUint(uint64(id), 10))
	return c.write(frameAMQP, s.channel, performative(descTransfer, l.handle, id, tag, uint32(0), true), msg)
}

// answer runs one request on node and returns the response, correlated to the request's message-id.
func (c *conn) answer(node string, req Message) Message {
	code, desc, value := c.run(node, req)
	if node == "$management" {
		c.s.Management.Add(1)
	}
	return Message{
		Properties:            []any{nil, nil, nil, nil, nil, req.prop(0)},
		ApplicationProperties: map[string]any{"status-code": int32(code), "status-description": desc},
		Value:                 value,
	}
}

func (c *conn) run(node string, req Message) (int, string, any) {
	app := req.ApplicationProperties
	op, _ := app["operation"].(string)
	if node == "$cbs" {
		token, _ := req.Value.(string)
		audience, _ := app["name"].(string)
		if op != "put-token" || audience == "" {
			return 400, "The request must be a put-token with a name.", nil
		}
		expiry, err := c.verify(token, audience)
		if err != nil {
			return 401, err.Error(), nil
		}
		c.claims[audience] = expiry
		return 200, "OK", nil
	}
	name, _ := app["name"].(string)
	if op != "READ" {
		return 400, fmt.Sprintf("The operation '%s' is not supported.", op), nil
	}
	token, _ := app["security_token"].(string)
	entity := "amqp://" + c.s.Addr() + "/" + name
	if _, err := c.verify(token, entity); err != nil {
		return 401, err.Error(), nil
	}
	if exp, ok := c.claims[entity+"/$management"]; !ok || !exp.After(c.s.opts.Now()) {
		return 401, "Unauthorized: no valid claim was put on $cbs for the management node.", nil
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	h := c.s.hubs[name]
	if h == nil {
		return 404, fmt.Sprintf("The messaging entity 'sb://%s/%s' could not be found.", c.s.Addr(), name), nil
	}
	switch typ, _ := app["type"].(string); typ {
	case "com.microsoft:eventhub":
		ids := make(Array, len(h.partitions))
		for i, p := range h.partitions {
			ids[i] = p.ID
		}
		return 200, "OK", map[string]any{"name": name, "type": typ, "created_at": h.created, "partition_count": int32(len(ids)),
			"partition_ids": ids, "georeplication_factor": int32(1)}
	case "com.microsoft:partition":
		id, _ := app["partition"].(string)
		for _, p := range h.partitions {
			if p.ID != id {
				continue
			}
			return 200, "OK", map[string]any{"name": name, "type": typ, "partition": p.ID,
				"begin_sequence_number": p.Begin, "last_enqueued_sequence_number": p.Last,
				"last_enqueued_offset": strconv.FormatInt(max(p.Last, -1)*64, 10), "last_enqueued_time_utc": p.LastEnqueued.UTC(),
				"is_partition_empty": p.Last < p.Begin}
		}
		return 404, fmt.Sprintf("The partition '%s' of '%s' could not be found.", id, name), nil
	default:
		return 400, fmt.Sprintf("The type '%s' is not supported.", typ), nil
	}
}

// verify checks a SharedAccessSignature the way the service does: the key name, the expiry, the signed resource
// (a prefix of resource), and the HMAC-SHA256 of "<url-encoded resource>\n<expiry>" with the namespace's key. It
// returns the token's expiry. Errors never repeat the token.
func (c *conn) verify(token, resource string) (time.Time, error) {
	invalid := errors.New("InvalidSignature: The token has an invalid signature.")
	rest, ok := strings.CutPrefix(token, "SharedAccessSignature ")
	if !ok {
		return time.Time{}, errors.New("InvalidToken: The token is not a SharedAccessSignature.")
	}
	f := map[string]string{}
	for _, kv := range strings.Split(rest, "&") {
		k, v, _ := strings.Cut(kv, "=")
		f[k] = v
	}
	se, err := strconv.ParseInt(f["se"], 10, 64)
	if err != nil {
		return time.Time{}, invalid
	}
	expiry := time.Unix(se, 0)
	if !expiry.After(c.s.opts.Now()) {
		return time.Time{}, errors.New("ExpiredToken: The token is expired.")
	}
	if f["skn"] != c.s.opts.KeyName {
		return time.Time{}, errors.New("InvalidSignature: The shared access policy named in the token does not exist.")
	}
	sr, err := url.QueryUnescape(f["sr"])
	if err != nil || !strings.HasPrefix(strings.ToLower(resource), strings.TrimSuffix(strings.ToLower(sr), "/")) {
		return time.Time{}, errors.New("InvalidAudience: The token's audience does not match the resource.")
	}
	sig, err := url.QueryUnescape(f["sig"])
	if err != nil {
		return time.Time{}, invalid
	}
	mac := hmac.New(sha256.New, []byte(c.s.opts.Key))
	mac.Write([]byte(f["sr"] + "\n" + f["se"]))
	if !hmac.Equal([]byte(sig), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
		return time.Time{}, invalid
	}
	return expiry, nil
}
