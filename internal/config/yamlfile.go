package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"
)

// FileError is one problem in a settings file, at a line, under a key:
//
//	routes.yaml:8: models.sim/small: unknown key "timout" (did you mean "timeout"?)
type FileError struct {
	File string
	Line int    // 1-based; 0 when the problem is the whole file
	Key  string // dotted path of the key ("models.sim/small.timeout"); empty for syntax errors
	Msg  string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// doc decodes one YAML file node by node, so that every error carries its
// line and key, and collects every error instead of stopping at the first.
type doc struct {
	file  string
	errs  []*FileError
	lines map[string]int // line of each key seen, by dotted path
}

// parseYAML reads src into its root mapping node. A syntax error is located
// by a second parser, because yaml.v3 reports the line of the enclosing
// block (often the line before) rather than the line of the problem.
func (d *doc) parseYAML(src []byte) *yaml.Node {
	var root yaml.Node
	err := yaml.Unmarshal(src, &root)
	if err == nil && root.Kind == 0 {
		d.errs = append(d.errs, &FileError{File: d.file, Msg: "empty file"})
		return nil
	}
	if err == nil {
		return &root
	}
	fe := &FileError{File: d.file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	var located goccy.Error
	if _, perr := goccyparser.ParseBytes(src, 0); errors.As(perr, &located) && located.GetToken() != nil {
		fe.Line = located.GetToken().Position.Line
		fe.Msg = "invalid YAML: " + located.GetMessage()
	} else if line, rest, ok := strings.Cut(fe.Msg, ": "); ok && strings.HasPrefix(line, "line ") {
		fe.Line, _ = strconv.Atoi(strings.TrimPrefix(line, "line "))
		fe.Msg = "invalid YAML: " + rest
	}
	d.errs = append(d.errs, fe)
	return nil
}

func (d *doc) errorf(n *yaml.Node, key, format string, a ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errorAt(line, key, format, a...)
}

func (d *doc) errorAt(line int, key, format string, a ...any) {
	d.errs = append(d.errs, &FileError{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, a...)})
}

// err returns every error collected, sorted by line, or nil.
func (d *doc) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.errs, func(a, b *FileError) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Key, b.Key)
	})
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return resolve(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// kindName says what a node is, for "want a mapping, got a list".
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// entries calls fn for every key of the mapping n (a section whose keys are
// names: models, providers, tiers). A null value is an empty mapping.
func (d *doc) entries(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of keys, got %s", kindName(n))
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, path, "key %q given twice (first on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if d.lines == nil {
			d.lines = make(map[string]int)
		}
		d.lines[join(path, k.Value)] = k.Line
		fn(k.Value, k, v)
	}
}

// fields is the set of keys a section takes: each decodes its value node.
type fields map[string]func(v *yaml.Node)

// object decodes the mapping n, whose keys must be among known; an unknown
// key is reported with the closest known one.
func (d *doc) object(n *yaml.Node, path string, known fields) {
	d.entries(n, path, func(key string, k, v *yaml.Node) {
		f, ok := known[key]
		if !ok {
			d.errorf(k, path, "unknown key %q%s", key, suggest(key, known))
			return
		}
		f(v)
	})
}

// suggest returns ` (did you mean "x"?)` for the known key closest to key,
// when one is close enough to be a typo, else "".
func suggest(key string, known fields) string {
	best, bestD := "", math.MaxInt
	for k := range known {
		if dist := editDistance(key, k); dist < bestD || (dist == bestD && k < best) {
			best, bestD = k, dist
		}
	}
	if best == "" || bestD > max(2, len(key)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar checks that n is a single value; want names the expected type.
func (d *doc) scalar(n *yaml.Node, key, want string) bool {
	switch {
	case n.Kind != yaml.ScalarNode:
		d.errorf(n, key, "want %s, got %s", want, kindName(n))
	case isNull(n):
		d.errorf(n, key, "no value; want %s", want)
	default:
		return true
	}
	return false
}

func (d *doc) duration(n *yaml.Node, key string, dst *time.Duration) bool {
	if !d.scalar(n, key, `a duration like "10s"`) {
		return false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, key, `invalid duration %q; want one like "250ms", "10s" or "1m"`, n.Value)
		return false
	}
	*dst = v
	return true
}

func (d *doc) integer(n *yaml.Node, key string, dst *int) bool {
	if !d.scalar(n, key, "an integer") {
		return false
	}
	var v int
	if n.Tag != "!!int" || n.Decode(&v) != nil {
		d.errorf(n, key, "want an integer, got %q", n.Value)
		return false
	}
	*dst = v
	return true
}

func (d *doc) number(n *yaml.Node, key string, dst *float64) bool {
	if !d.scalar(n, key, "a number") {
		return false
	}
	var v float64
	if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(n, key, "want a number, got %q", n.Value)
		return false
	}
	*dst = v
	return true
}

func (d *doc) boolean(n *yaml.Node, key string, dst *bool) bool {
	if !d.scalar(n, key, "true or false") {
		return false
	}
	if n.Tag != "!!bool" || n.Decode(dst) != nil {
		d.errorf(n, key, "want true or false, got %q", n.Value)
		return false
	}
	return true
}

func (d *doc) text(n *yaml.Node, key string, dst *string) bool {
	if !d.scalar(n, key, "a string") {
		return false
	}
	*dst = n.Value
	return true
}

// texts decodes a list of strings; nil items are reported with their index.
func (d *doc) texts(n *yaml.Node, key string, dst *[]string) bool {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list of strings, got %s", kindName(n))
		return false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		var s string
		if !d.text(resolve(item), fmt.Sprintf("%s[%d]", key, i), &s) {
			ok = false
			continue
		}
		out = append(out, s)
	}
	if ok {
		*dst = out
	}
	return ok
}

// Checks run after a value decoded, each reporting at the value's line.

func (d *doc) atLeast(n *yaml.Node, key string, v, lo int) {
	if v < lo {
		d.errorf(n, key, "must be >= %d, got %d", lo, v)
	}
}

func (d *doc) positive(n *yaml.Node, key string, v time.Duration) {
	if v <= 0 {
		d.errorf(n, key, "must be > 0, got %s", v)
	}
}

func (d *doc) nonNegative(n *yaml.Node, key string, v time.Duration) {
	if v < 0 {
		d.errorf(n, key, "must not be negative, got %s", v)
	}
}

func (d *doc) share(n *yaml.Node, key string, v float64) {
	if !(v >= 0 && v <= 1) {
		d.errorf(n, key, "must be between 0 and 1, got %g", v)
	}
}
