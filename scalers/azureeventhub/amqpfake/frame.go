package amqpfake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frames (part 2, section 2.3) and the descriptors of the performatives, SASL frames and message sections.

const (
	frameAMQP = 0
	frameSASL = 1

	// maxFrame is the largest frame the fake accepts and announces.
	maxFrame = 1 << 20
)

// Descriptor codes.
const (
	descOpen        = 0x10
	descBegin       = 0x11
	descAttach      = 0x12
	descFlow        = 0x13
	descTransfer    = 0x14
	descDisposition = 0x15
	descDetach      = 0x16
	descEnd         = 0x17
	descClose       = 0x18
	descError       = 0x1d
	descAccepted    = 0x24
	descSource      = 0x28
	descTarget      = 0x29

	descSASLMechanisms = 0x40
	descSASLInit       = 0x41
	descSASLOutcome    = 0x44

	descProperties    = 0x73
	descAppProperties = 0x74
	descAmqpValue     = 0x77
)

var (
	headerAMQP = []byte{'A', 'M', 'Q', 'P', 0, 1, 0, 0}
	headerSASL = []byte{'A', 'M', 'Q', 'P', 3, 1, 0, 0}
)

// frame is one received frame: its type and channel, the performative and, for a transfer, the payload after it.
type frame struct {
	typ     byte
	channel uint16
	// code is the performative's descriptor; 0 for an empty (heartbeat) frame.
	code    uint64
	fields  []any
	payload []byte
}

// field returns the i-th field of the performative, or nil when the list is shorter.
func (f frame) field(i int) any {
	if i < len(f.fields) {
		return f.fields[i]
	}
	return nil
}

func readFrame(r io.Reader) (frame, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	doff := int(hdr[4]) * 4
	if size < 8 || size > maxFrame || doff < 8 || int(size) < doff {
		return frame{}, fmt.Errorf("amqp: bad frame header (size %d, doff %d)", size, doff)
	}
	rest := make([]byte, size-8)
	if _, err := io.ReadFull(r, rest); err != nil {
		return frame{}, err
	}
	f := frame{typ: hdr[5], channel: binary.BigEndian.Uint16(hdr[6:8])}
	body := rest[doff-8:]
	if len(body) == 0 {
		return f, nil
	}
	v, n, err := Decode(body)
	if err != nil {
		return frame{}, fmt.Errorf("amqp: decoding a frame body: %w", err)
	}
	d, ok := v.(Described)
	if !ok {
		return frame{}, errors.New("amqp: frame body is not a described performative")
	}
	code, ok := d.Descriptor.(uint64)
	if !ok {
		return frame{}, fmt.Errorf("amqp: performative descriptor %v is not a code", d.Descriptor)
	}
	f.code = code
	f.fields, _ = d.Value.([]any)
	f.payload = body[n:]
	return f, nil
}

// performative builds a described list with descriptor code, leaving trailing nil fields out.
func performative(code uint64, fields ...any) Described {
	for len(fields) > 0 && fields[len(fields)-1] == nil {
		fields = fields[:len(fields)-1]
	}
	return Described{Descriptor: code, Value: fields}
}

// appendFrame appends a frame carrying body (a performative) and payload to b.
func appendFrame(b []byte, typ byte, channel uint16, body any, payload []byte) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 2, typ, byte(channel>>8), byte(channel))
	if body != nil {
		var err error
		if b, err = Encode(b, body); err != nil {
			return nil, err
		}
	}
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// Message is the part of an AMQP message the management and CBS nodes use.
type Message struct {
	// Properties is the properties section's list (message-id, user-id, to, subject, reply-to, correlation-id...).
	Properties []any
	// ApplicationProperties is the application-properties section.
	ApplicationProperties map[string]any
	// Value is the amqp-value body.
	Value any
}

// prop returns the i-th field of the properties section.
func (m Message) prop(i int) any {
	if i < len(m.Properties) {
		return m.Properties[i]
	}
	return nil
}

// DecodeMessage reads the sections of a transferred message; sections the fake does not use are skipped.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	for len(b) > 0 {
		v, n, err := Decode(b)
		if err != nil {
			return Message{}, fmt.Errorf("amqp: decoding a message section: %w", err)
		}
		b = b[n:]
		d, ok := v.(Described)
		if !ok {
			return Message{}, errors.New("amqp: message section is not described")
		}
		switch d.Descriptor {
		case uint64(descProperties):
			m.Properties, _ = d.Value.([]any)
		case uint64(descAppProperties):
			raw, ok := d.Value.(map[any]any)
			if !ok {
				return Message{}, errors.New("amqp: application-properties is not a map")
			}
			m.ApplicationProperties = make(map[string]any, len(raw))
			for k, v := range raw {
				s, ok := k.(string)
				if !ok {
					return Message{}, fmt.Errorf("amqp: application-properties key %v is not a string", k)
				}
				m.ApplicationProperties[s] = v
			}
		case uint64(descAmqpValue):
			m.Value = d.Value
		}
	}
	return m, nil
}

// EncodeMessage writes the properties, application-properties and amqp-value sections of m.
func EncodeMessage(m Message) ([]byte, error) {
	var b []byte
	var err error
	if m.Properties != nil {
		if b, err = Encode(b, performative(descProperties, m.Properties...)); err != nil {
			return nil, err
		}
	}
	if m.ApplicationProperties != nil {
		if b, err = Encode(b, Described{Descriptor: uint64(descAppProperties), Value: m.ApplicationProperties}); err != nil {
			return nil, err
		}
	}
	return Encode(b, Described{Descriptor: uint64(descAmqpValue), Value: m.Value})
}
