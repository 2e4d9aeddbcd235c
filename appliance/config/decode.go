package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// source records where a parsed config came from: the file name and the
// line of every key path that appeared in it.
type source struct {
	file  string
	dir   string // directory relative secret files are resolved against
	lines map[string]int
}

// Load reads, decodes, defaults, resolves and validates the config file at
// path. Any problem is reported as a *ValidationError (or a read error).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load for bytes already in memory. filename is used in messages
// and to resolve relative secret file paths (relative to its directory).
func Parse(data []byte, filename string) (*Config, error) {
	c := &Config{src: &source{file: filename, lines: map[string]int{}}}
	if filename != "" {
		c.src.dir = filepath.Dir(filename)
	}
	d := &decoder{src: c.src}
	root, err := parseYAML(data)
	if err != nil {
		return nil, &ValidationError{Problems: []Problem{syntaxProblem(filename, err)}}
	}
	if root != nil {
		d.decode(root, reflect.ValueOf(c).Elem(), "", 0)
	}
	if len(d.probs) > 0 {
		// Type errors make later checks noisy; report them alone.
		return nil, &ValidationError{Problems: d.probs}
	}
	c.applyDefaults()
	secretProbs := c.resolveSecrets()
	verr := c.validate()
	verr.Problems = append(secretProbs, verr.Problems...)
	if len(verr.Problems) > 0 {
		verr.sort()
		return nil, verr
	}
	return c, nil
}

// parseYAML parses exactly one YAML document into a node tree; nil for an
// empty file.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 has had parser panics on hostile input; a config loader
		// must answer with an error instead.
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("yaml: parser failure: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("yaml: line %d: a second YAML document (---) is not allowed", extra.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &doc, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		// yaml.v3 reports parser (not scanner) errors with a 0-based line.
		if strings.HasPrefix(msg, "did not find expected") {
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return Problem{
		File: file, Line: line,
		Msg:  "YAML syntax error: " + msg,
		Hint: "look at this line and the next: check indentation (spaces, not tabs) and that every key is followed by ': '; quote values containing ': ' or '#'",
	}
}

// decoder walks a yaml.Node tree into Go values by their yaml tags,
// rejecting unknown keys and wrong types with the line they are on.
type decoder struct {
	src     *source
	probs   []Problem
	visits  int
	stopped bool
}

// maxVisits bounds the work aliases can cause ("billion laughs").
const (
	maxVisits = 100000
	maxDepth  = 64
)

var durationType = reflect.TypeOf(time.Duration(0))

func (d *decoder) errorf(n *yaml.Node, path, hint, format string, args ...any) {
	d.probs = append(d.probs, Problem{
		Path: path, File: d.src.file, Line: n.Line,
		Msg: fmt.Sprintf(format, args...), Hint: hint,
	})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return "the integer " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!float":
			return "the number " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// step counts one node visit and reports whether decoding may go on; it
// stops alias cycles and exponential alias expansion.
func (d *decoder) step(n *yaml.Node, path string, depth int) bool {
	d.visits++
	if d.visits > maxVisits || depth > maxDepth {
		if !d.stopped {
			d.stopped = true
			d.errorf(n, path, "simplify the file; anchors and aliases may not nest this deeply or refer to themselves", "config is too large or too deeply nested")
		}
		return false
	}
	return true
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if !d.step(n, path, depth) {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			d.decode(n.Content[0], v, path, depth+1)
		}
		return
	case yaml.AliasNode:
		if n.Alias != nil {
			d.decode(n.Alias, v, path, depth+1)
		}
		return
	}
	if path != "" {
		if _, ok := d.src.lines[path]; !ok {
			d.src.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "key:" with nothing after it leaves the default
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "write it as a YAML list: one '- item' per line, or [a, b]", "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
		v.Set(s)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path, depth+1)
		v.Set(e)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "write a single value on the same line as the key", "want a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "write a whole number such as 3", "want an integer, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 32)
		if err != nil {
			d.errorf(n, path, "write a whole number such as 3, without quotes or units", "want an integer, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind == yaml.ScalarNode {
			switch strings.ToLower(n.Value) {
			case "true", "yes", "on":
				v.SetBool(true)
				return
			case "false", "no", "off":
				v.SetBool(false)
				return
			}
		}
		d.errorf(n, path, "write true or false", "want true or false, got %s", kindName(n))
	default:
		d.errorf(n, path, "", "cannot decode into %s", v.Type())
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	const hint = `write a number with a unit: "90s", "15m", "12h", "7d" or "1d12h"`
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, hint, "want a duration, got %s", kindName(n))
		return
	}
	if n.ShortTag() == "!!int" && n.Value == "0" {
		v.SetInt(0)
		return
	}
	if n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
		d.errorf(n, path, hint, "duration %s has no unit", n.Value)
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, path, hint, "bad duration %q", n.Value)
		return
	}
	if dur < 0 {
		d.errorf(n, path, "durations cannot be negative", "negative duration %q", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		hint := "indent the keys under it, one 'key: value' per line"
		if v.Type() == reflect.TypeOf(Secret{}) {
			hint = "a secret is a mapping: {file: /etc/deskgate/name.secret} or {env: VARIABLE}"
		}
		d.errorf(n, path, hint, "want a mapping, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(val, v, path, depth)
			continue
		}
		kp := joinPath(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys are plain words such as name:", "a key must be a plain word, got %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, kp, "remove one of the two", "key %q appears twice in this mapping (first on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.errorf(k, kp, unknownHint(k.Value, fields), "unknown key %q", k.Value)
			continue
		}
		d.src.lines[kp] = k.Line
		d.decode(val, v.Field(idx), kp, depth+1)
	}
}

// merge applies a YAML merge key ("<<: *anchor") by decoding the anchored
// mapping(s) into the same struct.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string, depth int) {
	if !d.step(n, path, depth) {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.mapping(n, v, path, depth+1)
	case yaml.SequenceNode:
		for _, item := range n.Content {
			d.merge(item, v, path, depth+1)
		}
	default:
		d.errorf(n, path, "use <<: *anchor where the anchor names a mapping", "merge key needs a mapping, got %s", kindName(n))
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps yaml key → field index for the tagged fields of t.
func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func unknownHint(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if s := closest(key, names); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "valid keys here: " + strings.Join(names, ", ")
}

// closest returns the candidate nearest to s by edit distance if it is near
// enough to be a likely typo, else "".
func closest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	if len(ls) > 64 {
		return ""
	}
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if len(lc) >= 3 && len(ls) >= 3 && (strings.HasPrefix(ls, lc) || strings.HasPrefix(lc, ls)) {
			return c // "lastname" for "last", "smtp_" for "smtp_host"
		}
		dd := editDistance(ls, lc)
		if dd < bestD {
			best, bestD = c, dd
		}
	}
	limit := 2
	if len(s) > 8 {
		limit = 3
	}
	if bestD <= limit && bestD < len(s) {
		return best
	}
	return ""
}

// editDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and adjacent transpositions each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// ParseDuration is time.ParseDuration that also accepts a leading day
// count: "7d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	if i := strings.IndexByte(body, 'd'); i > 0 {
		days, err := strconv.ParseUint(body[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("parse duration %q: bad day count", s)
		}
		var rest time.Duration
		if r := body[i+1:]; r != "" {
			rest, err = time.ParseDuration(r)
			if err != nil || rest < 0 {
				return 0, fmt.Errorf("parse duration %q: bad remainder", s)
			}
		}
		d := time.Duration(days)*24*time.Hour + rest
		if neg {
			d = -d
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parse duration: %w", err)
	}
	return d, nil
}
