package scalers

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Parse fills the struct pointed to by dst from the trigger's metadata, auth parameters and resolved
// environment, as its `tidal` struct tags say, then calls dst's Validate() if it has one. Every problem is
// reported, each naming its field; the error names the trigger.
//
// Tag syntax, comma separated:
//
//	name=listLength        metadata key (several keys: name=address;host, the first present wins)
//	order=authParams;triggerMetadata
//	                       where to look, in order: triggerMetadata (default), authParams, resolvedEnv.
//	                       In triggerMetadata a key "<name>FromEnv" names a variable of the target's container.
//	default=5              value when absent
//	optional               absent is fine; the field keeps its zero value (pointer fields stay nil)
//	enum=a;b;c             allowed values
//	range=0;100            allowed numeric range, inclusive; either side may be empty (durations: seconds)
//	target                 the value is a metric target per replica: it must be at least MinTarget
//
// Numbers are checked for every numeric field, whatever its tags: surrounding whitespace is trimmed (" 5 " is 5,
// from metadata, authParams and the environment alike), an empty value is an error (leave the key out to get the
// default), NaN and ±Inf are refused, integers must fit their Go type, and no value may exceed ±MaxValue, the
// largest a Kubernetes quantity holds exactly in milli-units. Durations must not be negative.
//
// Supported field kinds: string, bool, ints, uints, floats, time.Duration ("30s" or a number of seconds),
// []string (comma separated), map[string]string ("k=v,k2=v2"), pointers to these, and embedded or tagged
// nested structs (their fields are parsed with the same config). A value read from authParams is a secret: an
// error about it never repeats the value.
func Parse(cfg *TriggerConfig, dst any) error {
	cfg.Normalize()
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("scalers.Parse: dst must be a pointer to a struct, got %T", dst)
	}
	var errs []error
	parseStruct(cfg, v.Elem(), &errs)
	if len(errs) == 0 {
		if val, ok := dst.(interface{ Validate() error }); ok {
			if err := val.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return cfg.Errorf("%w", &MetadataError{Problems: msgs, errs: errs})
}

// MetadataError lists every problem found in a trigger's metadata.
type MetadataError struct {
	Problems []string
	errs     []error
}

func (e *MetadataError) Error() string   { return strings.Join(e.Problems, "; ") }
func (e *MetadataError) Unwrap() []error { return e.errs }

type fieldTag struct {
	names    []string
	order    []string
	def      *string
	optional bool
	enum     []string
	min, max *float64
	target   bool
}

// MaxValue is the largest magnitude any numeric metadata field may have. Metric values and targets travel as
// resource.Quantity milli-units (int64) and through float64 math: 1e15 keeps both exact. A threshold meant as
// "never scale" (listLength: 9223372036854775807) is refused rather than silently clamped.
const MaxValue = 1e15

// MinTarget is the smallest metric target: quantities keep milli precision, so anything below 0.001 would round
// to 0 (and a 0 target divides by zero in the replica calculation).
const MinTarget = 0.001

const (
	orderMetadata = "triggerMetadata"
	orderAuth     = "authParams"
	orderEnv      = "resolvedEnv"
)

func parseTag(tag string) (fieldTag, error) {
	t := fieldTag{order: []string{orderMetadata}}
	for _, part := range strings.Split(tag, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		switch strings.TrimSpace(k) {
		case "name":
			t.names = splitSemi(val)
		case "order":
			t.order = splitSemi(val)
			for _, o := range t.order {
				if o != orderMetadata && o != orderAuth && o != orderEnv {
					return t, fmt.Errorf("unknown order %q", o)
				}
			}
		case "default":
			d := val
			t.def = &d
		case "optional":
			t.optional = true
		case "target":
			t.target = true
		case "enum":
			t.enum = splitSemi(val)
		case "range":
			lo, hi, _ := strings.Cut(val, ";")
			if lo != "" {
				f, err := strconv.ParseFloat(lo, 64)
				if err != nil {
					return t, fmt.Errorf("bad range %q", val)
				}
				t.min = &f
			}
			if hi != "" {
				f, err := strconv.ParseFloat(hi, 64)
				if err != nil {
					return t, fmt.Errorf("bad range %q", val)
				}
				t.max = &f
			}
		default:
			return t, fmt.Errorf("unknown tag option %q", k)
		}
	}
	if len(t.names) == 0 {
		return t, errors.New("tag has no name")
	}
	return t, nil
}

func splitSemi(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseStruct(cfg *TriggerConfig, v reflect.Value, errs *[]error) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		fv := v.Field(i)
		tag, hasTag := sf.Tag.Lookup("tidal")
		if !hasTag {
			if sf.Anonymous && fv.Kind() == reflect.Struct {
				parseStruct(cfg, fv, errs)
			}
			continue
		}
		if tag == "-" || !sf.IsExported() {
			continue
		}
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[time.Duration]() && tag == "" {
			parseStruct(cfg, fv, errs)
			continue
		}
		ft, err := parseTag(tag)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("field %s: bad tidal tag: %w", sf.Name, err))
			continue
		}
		raw, found, secret, lookupErr := lookup(cfg, ft)
		name := ft.names[0]
		if lookupErr != nil {
			*errs = append(*errs, lookupErr)
			continue
		}
		if !found {
			switch {
			case ft.def != nil:
				raw = *ft.def
			case ft.optional:
				continue
			default:
				*errs = append(*errs, fmt.Errorf("missing required parameter %q in [%s]", name, strings.Join(ft.order, ",")))
				continue
			}
		}
		if err := setField(fv, raw); err != nil {
			if secret {
				*errs = append(*errs, fmt.Errorf("%s: %s", name, err.kind))
			} else {
				*errs = append(*errs, fmt.Errorf("%s: %s, got %q", name, err.kind, raw))
			}
			continue
		}
		if len(ft.enum) > 0 && !contains(ft.enum, raw) {
			shown := fmt.Sprintf("%q", raw)
			if secret {
				shown = "a value"
			}
			*errs = append(*errs, fmt.Errorf("%s: want one of %s, got %s", name, strings.Join(ft.enum, ", "), shown))
			continue
		}
		if f, ok := numeric(fv); ok {
			if err := checkNumber(ft, f); err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// lookup finds the raw value of a field following its order. secret reports that it came from authParams.
func lookup(cfg *TriggerConfig, ft fieldTag) (raw string, found, secret bool, err error) {
	for _, src := range ft.order {
		for _, name := range ft.names {
			switch src {
			case orderMetadata:
				if v, ok := cfg.Metadata[name]; ok {
					return strings.TrimSpace(v), true, false, nil
				}
				if envName, ok := cfg.Metadata[name+"FromEnv"]; ok {
					v, ok := cfg.ResolvedEnv[envName]
					if !ok {
						return "", false, false, fmt.Errorf("%sFromEnv: environment variable %q not found in the scale target's container", name, envName)
					}
					return strings.TrimSpace(v), true, true, nil
				}
			case orderAuth:
				if v, ok := cfg.AuthParams[name]; ok {
					return v, true, true, nil
				}
			case orderEnv:
				if v, ok := cfg.ResolvedEnv[name]; ok {
					return v, true, true, nil
				}
			}
		}
	}
	return "", false, false, nil
}

// checkNumber applies the rules every numeric field obeys, then the field's own range and target options.
func checkNumber(ft fieldTag, f float64) error {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return errors.New("want a finite number")
	case math.Abs(f) > MaxValue:
		return fmt.Errorf("must be between %g and %g, got %g", -MaxValue, MaxValue, f)
	case ft.min != nil && f < *ft.min:
		return fmt.Errorf("must be >= %v, got %v", *ft.min, f)
	case ft.max != nil && f > *ft.max:
		return fmt.Errorf("must be <= %v, got %v", *ft.max, f)
	case ft.target && f < MinTarget:
		return fmt.Errorf("a metric target must be at least %g (targets keep milli precision, smaller values round to 0), got %g", MinTarget, f)
	}
	return nil
}

type setError struct{ kind string }

func numeric(v reflect.Value) (float64, bool) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0, false
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			return time.Duration(v.Int()).Seconds(), true
		}
		return float64(v.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(v.Uint()), true
	case reflect.Float32, reflect.Float64:
		return v.Float(), true
	}
	return 0, false
}

func setField(v reflect.Value, raw string) *setError {
	if k := v.Kind(); k != reflect.String && k != reflect.Pointer && k != reflect.Slice && k != reflect.Map {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return &setError{"want a value, got an empty one (leave the key out for the default)"}
		}
	}
	if v.Kind() == reflect.Pointer {
		nv := reflect.New(v.Type().Elem())
		if err := setField(nv.Elem(), raw); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		if d, err := time.ParseDuration(raw); err == nil {
			if d < 0 {
				return &setError{"want a non-negative duration such as 30s or a number of seconds"}
			}
			v.SetInt(int64(d))
			return nil
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > MaxValue/1e6 {
			return &setError{"want a non-negative duration such as 30s or a number of seconds"}
		}
		v.SetInt(int64(f * float64(time.Second)))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return &setError{"want true or false"}
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return &setError{fmt.Sprintf("want an integer between %g and %g", -MaxValue, MaxValue)}
		}
		if err != nil {
			return &setError{"want integer"}
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return &setError{fmt.Sprintf("want an integer between 0 and %g", MaxValue)}
		}
		if err != nil {
			return &setError{"want non-negative integer"}
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(raw, v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return &setError{"want a finite number"}
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return &setError{"unsupported field type " + v.Type().String()}
		}
		var items []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return &setError{"unsupported field type " + v.Type().String()}
		}
		m := map[string]string{}
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return &setError{"want key=value pairs separated by commas"}
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
	default:
		return &setError{"unsupported field type " + v.Type().String()}
	}
	return nil
}

// Field describes one tagged metadata field, for documentation, admission and tests.
type Field struct {
	// Name is the metadata key (the first of the tag's names); Aliases are the other keys read, in order.
	Name    string
	Aliases []string
	// Sources are where the value is looked up, in order: triggerMetadata, authParams, resolvedEnv.
	Sources []string
	// Kind is the Go kind of the field's value (a pointer's element kind); Duration marks time.Duration.
	Kind     reflect.Kind
	Duration bool
	// Default is the value used when the key is absent (nil: none); Optional means absent is fine without one.
	Default  *string
	Optional bool
	// Enum lists the allowed values (empty: any).
	Enum []string
	// Target marks a metric target (at least MinTarget); Min and Max are the tag's range, nil when open.
	Target   bool
	Min, Max *float64
}

// Required reports whether the trigger is refused when the key is absent.
func (f Field) Required() bool { return f.Default == nil && !f.Optional }

// Secret reports whether the value may come from a TriggerAuthentication (authParams): such values are never
// repeated in an error, a log or a status.
func (f Field) Secret() bool {
	for _, s := range f.Sources {
		if s == orderAuth {
			return true
		}
	}
	return false
}

// Numeric reports whether the field holds a number (an integer, a float or a duration).
func (f Field) Numeric() bool {
	switch f.Kind {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// Fields lists the tagged fields of a metadata struct (or a pointer to one), nested structs included, in
// declaration order. Fields with a malformed tag are skipped: Parse reports those.
func Fields(meta any) []Field {
	t := reflect.TypeOf(meta)
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []Field
	collectFields(t, &out)
	return out
}

func collectFields(t reflect.Type, out *[]Field) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("tidal")
		ft := sf.Type
		if !hasTag {
			if sf.Anonymous && ft.Kind() == reflect.Struct {
				collectFields(ft, out)
			}
			continue
		}
		if tag == "-" || !sf.IsExported() {
			continue
		}
		if ft.Kind() == reflect.Struct && tag == "" {
			collectFields(ft, out)
			continue
		}
		pt, err := parseTag(tag)
		if err != nil {
			continue
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		*out = append(*out, Field{Name: pt.names[0], Aliases: pt.names[1:], Sources: pt.order, Kind: ft.Kind(),
			Duration: ft == reflect.TypeFor[time.Duration](), Default: pt.def, Optional: pt.optional, Enum: pt.enum,
			Target: pt.target, Min: pt.min, Max: pt.max})
	}
}
