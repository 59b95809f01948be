package amqpfake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The AMQP 1.0 type system (OASIS AMQP 1.0, part 1), as far as Event Hubs' management and CBS messages and the
// transport performatives need it. Values decode to Go values:
//
//	null → nil, boolean → bool, ubyte/ushort/uint/ulong → uint8/uint16/uint32/uint64,
//	byte/short/int/long → int8/int16/int32/int64, double → float64, timestamp → time.Time (UTC, ms),
//	uuid → UUID, binary → []byte, string → string, symbol → Symbol, list → []any, map → map[any]any,
//	array → Array, a described value → Described.
//
// Encoding takes the same Go values back (int → long, time.Time → timestamp).

// Symbol is an AMQP symbol (an ASCII name), distinct from a string on the wire.
type Symbol string

// UUID is an AMQP uuid.
type UUID [16]byte

// Array is an AMQP array: every element has the same type.
type Array []any

// Described is a value with a descriptor (a ulong code or a symbol): performatives, message sections, outcomes.
type Described struct {
	Descriptor any
	Value      any
}

// Format codes (part 1, section 1.6).
const (
	codeDescribed = 0x00
	codeNull      = 0x40
	codeTrue      = 0x41
	codeFalse     = 0x42
	codeBool      = 0x56
	codeUint0     = 0x43
	codeSmallUint = 0x52
	codeUint      = 0x70
	codeUlong0    = 0x44
	codeSmallUlng = 0x53
	codeUlong     = 0x80
	codeUbyte     = 0x50
	codeUshort    = 0x60
	codeByte      = 0x51
	codeShort     = 0x61
	codeSmallInt  = 0x54
	codeInt       = 0x71
	codeSmallLong = 0x55
	codeLong      = 0x81
	codeFloat     = 0x72
	codeDouble    = 0x82
	codeChar      = 0x73
	codeTimestamp = 0x83
	codeUUID      = 0x98
	codeVbin8     = 0xa0
	codeVbin32    = 0xb0
	codeStr8      = 0xa1
	codeStr32     = 0xb1
	codeSym8      = 0xa3
	codeSym32     = 0xb3
	codeList0     = 0x45
	codeList8     = 0xc0
	codeList32    = 0xd0
	codeMap8      = 0xc1
	codeMap32     = 0xd1
	codeArray8    = 0xe0
	codeArray32   = 0xf0
)

var errShort = errors.New("amqp: value truncated")

// decoder reads AMQP values from a byte slice.
type decoder struct {
	b   []byte
	pos int
}

func (d *decoder) left() int { return len(d.b) - d.pos }

func (d *decoder) next(n int) ([]byte, error) {
	if n < 0 || d.left() < n {
		return nil, errShort
	}
	p := d.b[d.pos : d.pos+n]
	d.pos += n
	return p, nil
}

func (d *decoder) byte1() (byte, error) {
	p, err := d.next(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// Decode reads one value from b and returns it with the number of bytes it took.
func Decode(b []byte) (any, int, error) {
	d := &decoder{b: b}
	v, err := d.value()
	return v, d.pos, err
}

func (d *decoder) value() (any, error) {
	code, err := d.byte1()
	if err != nil {
		return nil, err
	}
	if code == codeDescribed {
		desc, err := d.value()
		if err != nil {
			return nil, err
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		return Described{Descriptor: desc, Value: v}, nil
	}
	return d.payload(code)
}

// payload reads the value after its constructor code (also used for array elements, which share one).
func (d *decoder) payload(code byte) (any, error) {
	fixed := func(n int) ([]byte, error) { return d.next(n) }
	switch code {
	case codeNull:
		return nil, nil
	case codeTrue:
		return true, nil
	case codeFalse:
		return false, nil
	case codeBool:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		return p[0] != 0, nil
	case codeUint0:
		return uint32(0), nil
	case codeSmallUint:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		return uint32(p[0]), nil
	case codeUint:
		p, err := fixed(4)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.Uint32(p), nil
	case codeUlong0:
		return uint64(0), nil
	case codeSmallUlng:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		return uint64(p[0]), nil
	case codeUlong:
		p, err := fixed(8)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.Uint64(p), nil
	case codeUbyte:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		return p[0], nil
	case codeUshort:
		p, err := fixed(2)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.Uint16(p), nil
	case codeByte:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		return int8(p[0]), nil
	case codeShort:
		p, err := fixed(2)
		if err != nil {
			return nil, err
		}
		return int16(binary.BigEndian.Uint16(p)), nil
	case codeSmallInt:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		return int32(int8(p[0])), nil
	case codeInt:
		p, err := fixed(4)
		if err != nil {
			return nil, err
		}
		return int32(binary.BigEndian.Uint32(p)), nil
	case codeSmallLong:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		return int64(int8(p[0])), nil
	case codeLong:
		p, err := fixed(8)
		if err != nil {
			return nil, err
		}
		return int64(binary.BigEndian.Uint64(p)), nil
	case codeFloat:
		p, err := fixed(4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.BigEndian.Uint32(p)), nil
	case codeDouble:
		p, err := fixed(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	case codeChar:
		p, err := fixed(4)
		if err != nil {
			return nil, err
		}
		return rune(binary.BigEndian.Uint32(p)), nil
	case codeTimestamp:
		p, err := fixed(8)
		if err != nil {
			return nil, err
		}
		return time.UnixMilli(int64(binary.BigEndian.Uint64(p))).UTC(), nil
	case codeUUID:
		p, err := fixed(16)
		if err != nil {
			return nil, err
		}
		var u UUID
		copy(u[:], p)
		return u, nil
	case codeVbin8, codeVbin32, codeStr8, codeStr32, codeSym8, codeSym32:
		n, err := d.size(code&0xf0 == 0xa0)
		if err != nil {
			return nil, err
		}
		p, err := d.next(n)
		if err != nil {
			return nil, err
		}
		switch code {
		case codeVbin8, codeVbin32:
			return append([]byte(nil), p...), nil
		case codeStr8, codeStr32:
			return string(p), nil
		}
		return Symbol(p), nil
	case codeList0:
		return []any{}, nil
	case codeList8, codeList32, codeMap8, codeMap32:
		small := code == codeList8 || code == codeMap8
		inner, count, err := d.compound(small)
		if err != nil {
			return nil, err
		}
		items := make([]any, 0, count)
		for i := 0; i < count; i++ {
			v, err := inner.value()
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
		if code == codeList8 || code == codeList32 {
			return items, nil
		}
		if count%2 != 0 {
			return nil, errors.New("amqp: map with an odd number of items")
		}
		m := make(map[any]any, count/2)
		for i := 0; i < count; i += 2 {
			switch items[i].(type) {
			case []byte, []any, map[any]any, Array, Described:
				return nil, fmt.Errorf("amqp: map key of type %T", items[i])
			}
			m[items[i]] = items[i+1]
		}
		return m, nil
	case codeArray8, codeArray32:
		inner, count, err := d.compound(code == codeArray8)
		if err != nil {
			return nil, err
		}
		elem, err := inner.byte1()
		if err != nil {
			return nil, err
		}
		var desc any
		if elem == codeDescribed {
			if desc, err = inner.value(); err != nil {
				return nil, err
			}
			if elem, err = inner.byte1(); err != nil {
				return nil, err
			}
		}
		a := make(Array, 0, count)
		for i := 0; i < count; i++ {
			v, err := inner.payload(elem)
			if err != nil {
				return nil, err
			}
			if desc != nil {
				v = Described{Descriptor: desc, Value: v}
			}
			a = append(a, v)
		}
		return a, nil
	}
	return nil, fmt.Errorf("amqp: unknown format code %#02x", code)
}

// size reads a 1- or 4-byte length.
func (d *decoder) size(small bool) (int, error) {
	if small {
		b, err := d.byte1()
		return int(b), err
	}
	p, err := d.next(4)
	if err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(p)
	if n > math.MaxInt32 {
		return 0, errShort
	}
	return int(n), nil
}

// compound reads the size and count of a list, map or array and returns a decoder over its items.
func (d *decoder) compound(small bool) (*decoder, int, error) {
	size, err := d.size(small)
	if err != nil {
		return nil, 0, err
	}
	body, err := d.next(size)
	if err != nil {
		return nil, 0, err
	}
	inner := &decoder{b: body}
	count, err := inner.size(small)
	if err != nil {
		return nil, 0, err
	}
	if count > len(body) {
		return nil, 0, errShort // every item takes at least a byte (array elements of a 0-width type aside, unused here)
	}
	return inner, count, nil
}

// Encode appends the encoding of v to b.
func Encode(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, codeNull), nil
	case bool:
		if v {
			return append(b, codeTrue), nil
		}
		return append(b, codeFalse), nil
	case uint8:
		return append(b, codeUbyte, v), nil
	case uint16:
		return binary.BigEndian.AppendUint16(append(b, codeUshort), v), nil
	case uint32:
		if v == 0 {
			return append(b, codeUint0), nil
		}
		if v < 256 {
			return append(b, codeSmallUint, byte(v)), nil
		}
		return binary.BigEndian.AppendUint32(append(b, codeUint), v), nil
	case uint64:
		if v == 0 {
			return append(b, codeUlong0), nil
		}
		if v < 256 {
			return append(b, codeSmallUlng, byte(v)), nil
		}
		return binary.BigEndian.AppendUint64(append(b, codeUlong), v), nil
	case int8:
		return append(b, codeByte, byte(v)), nil
	case int16:
		return binary.BigEndian.AppendUint16(append(b, codeShort), uint16(v)), nil
	case int32:
		if v >= math.MinInt8 && v <= math.MaxInt8 {
			return append(b, codeSmallInt, byte(int8(v))), nil
		}
		return binary.BigEndian.AppendUint32(append(b, codeInt), uint32(v)), nil
	case int64:
		if v >= math.MinInt8 && v <= math.MaxInt8 {
			return append(b, codeSmallLong, byte(int8(v))), nil
		}
		return binary.BigEndian.AppendUint64(append(b, codeLong), uint64(v)), nil
	case int:
		return Encode(b, int64(v))
	case float64:
		return binary.BigEndian.AppendUint64(append(b, codeDouble), math.Float64bits(v)), nil
	case time.Time:
		return binary.BigEndian.AppendUint64(append(b, codeTimestamp), uint64(v.UnixMilli())), nil
	case UUID:
		return append(append(b, codeUUID), v[:]...), nil
	case []byte:
		return appendVariable(b, codeVbin8, codeVbin32, v), nil
	case string:
		return appendVariable(b, codeStr8, codeStr32, []byte(v)), nil
	case Symbol:
		return appendVariable(b, codeSym8, codeSym32, []byte(v)), nil
	case []any:
		if len(v) == 0 {
			return append(b, codeList0), nil
		}
		var body []byte
		for _, item := range v {
			var err error
			if body, err = Encode(body, item); err != nil {
				return nil, err
			}
		}
		return appendCompound(b, codeList32, len(v), body), nil
	case map[any]any:
		var body []byte
		for k, item := range v {
			var err error
			if body, err = Encode(body, k); err != nil {
				return nil, err
			}
			if body, err = Encode(body, item); err != nil {
				return nil, err
			}
		}
		return appendCompound(b, codeMap32, 2*len(v), body), nil
	case map[string]any:
		m := make(map[any]any, len(v))
		for k, item := range v {
			m[k] = item
		}
		return Encode(b, m)
	case Array:
		return encodeArray(b, v)
	case []string:
		a := make(Array, len(v))
		for i, s := range v {
			a[i] = s
		}
		return encodeArray(b, a)
	case Described:
		b = append(b, codeDescribed)
		b, err := Encode(b, v.Descriptor)
		if err != nil {
			return nil, err
		}
		return Encode(b, v.Value)
	}
	return nil, fmt.Errorf("amqp: cannot encode %T", v)
}

func appendVariable(b []byte, small, large byte, p []byte) []byte {
	if len(p) < 256 {
		b = append(b, small, byte(len(p)))
	} else {
		b = binary.BigEndian.AppendUint32(append(b, large), uint32(len(p)))
	}
	return append(b, p...)
}

// appendCompound writes a list, map or array in its 32-bit form: size (count plus body), count, body.
func appendCompound(b []byte, code byte, count int, body []byte) []byte {
	b = append(b, code)
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(count))
	return append(b, body...)
}

// encodeArray writes an array whose elements take the 32-bit (or only) encoding of the first element's type.
func encodeArray(b []byte, a Array) ([]byte, error) {
	if len(a) == 0 {
		return appendCompound(b, codeArray32, 0, []byte{codeNull}), nil
	}
	var code byte
	var body []byte
	for _, item := range a {
		var c byte
		var p []byte
		switch item := item.(type) {
		case Symbol:
			c, p = codeSym32, binary.BigEndian.AppendUint32(nil, uint32(len(item)))
			p = append(p, item...)
		case string:
			c, p = codeStr32, binary.BigEndian.AppendUint32(nil, uint32(len(item)))
			p = append(p, item...)
		case uint32:
			c, p = codeUint, binary.BigEndian.AppendUint32(nil, item)
		case uint64:
			c, p = codeUlong, binary.BigEndian.AppendUint64(nil, item)
		case int32:
			c, p = codeInt, binary.BigEndian.AppendUint32(nil, uint32(item))
		case int64:
			c, p = codeLong, binary.BigEndian.AppendUint64(nil, uint64(item))
		default:
			return nil, fmt.Errorf("amqp: cannot encode an array of %T", item)
		}
		if code != 0 && c != code {
			return nil, errors.New("amqp: array elements of different types")
		}
		code = c
		body = append(body, p...)
	}
	return appendCompound(b, codeArray32, len(a), append([]byte{code}, body...)), nil
}
