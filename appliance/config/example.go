package config

import (
	_ "embed"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed example.yaml
var example []byte

// Example returns a complete, commented example configuration using the
// seed plan table. Its secrets are files under /etc/deskgate/.
func Example() []byte { return append([]byte(nil), example...) }

// Redacted renders the effective configuration (after defaults) as YAML for
// "deskgate config show". Secrets appear only as their source (file path or
// environment variable name) and inline values as "[redacted]". Durations
// are written compactly ("15m", "7d"); the output loads back with Parse.
func (c *Config) Redacted() string {
	b, err := yaml.Marshal(encodeNode(reflect.ValueOf(c).Elem()))
	if err != nil {
		// The tree holds only plain scalars; this cannot happen short of a bug.
		return "# cannot render config: " + err.Error() + "\n"
	}
	return string(b)
}

// encodeNode mirrors decoder: a yaml.Node tree of v by its yaml tags.
func encodeNode(v reflect.Value) *yaml.Node {
	scalar := func(tag, val string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: val}
	}
	if v.Type() == durationType {
		return scalar("!!str", FormatDuration(time.Duration(v.Int())))
	}
	if s, ok := v.Interface().(Secret); ok {
		n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		m, _ := s.MarshalYAML()
		for _, k := range []string{"file", "env", "value"} {
			if val, ok := m.(map[string]string)[k]; ok {
				n.Content = append(n.Content, scalar("!!str", k), scalar("!!str", val))
			}
		}
		return n
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			n.Content = append(n.Content, scalar("!!str", name), encodeNode(v.Field(i)))
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			n.Content = append(n.Content, encodeNode(v.Index(i)))
		}
		return n
	case reflect.Pointer:
		if v.IsNil() {
			return scalar("!!null", "")
		}
		return encodeNode(v.Elem())
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	case reflect.Int:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	default:
		return scalar("!!str", v.String())
	}
}

// FormatDuration writes d the way the config file does: whole days as
// "7d", otherwise Go syntax without zero units ("15m", "1h30m", "1d12h").
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	neg := d < 0
	if neg {
		d = -d
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * 24 * time.Hour
	}
	if d > 0 {
		s := d.String()
		s = strings.Replace(s, "h0m", "h", 1)
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		b.WriteString(s)
	}
	return b.String()
}
