package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error lists every problem found in one configuration file. Each line of
// Error() reads "FILE:LINE: KEY: problem".
type Error struct {
	// File is the configuration file's name.
	File string
	// Problems are the individual problems, in file order where known.
	Problems []Problem
}

// Problem is one bad key or value.
type Problem struct {
	// Line is the 1-based line of the offending key or value; 0 when the
	// file has no such key (a required key is missing).
	Line int
	// Key is the dotted path of the key, such as cameras[2].url.
	Key string
	// Message says what is wrong.
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// DecodeYAML decodes one YAML file strictly into v: unknown keys and
// values of the wrong type are errors. Every error is an *Error naming the
// file (name), the line and the key. It returns the parsed tree, so that
// later checks can place their own problems with Located.
func DecodeYAML(name string, data []byte, v any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: name, Problems: yamlProblems(err, nil)}
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Problems: []Problem{{Message: "the file is empty"}}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Problems: yamlProblems(err, &root)}
	}
	return &root, nil
}

// Located returns the problems found in the file name as an *Error, each
// placed at the line of its key in root (or of the key's deepest parent
// present, for a missing key).
func Located(name string, root *yaml.Node, problems []Problem) *Error {
	for i := range problems {
		if problems[i].Line == 0 {
			problems[i].Line = lineOf(root, problems[i].Key)
		}
	}
	return &Error{File: name, Problems: problems}
}

// HasKey reports whether the key at a dotted path such as "input.scale" is
// present in root, so a decoder can tell an absent key from a zero value.
func HasKey(root *yaml.Node, key string) bool {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, part := range splitPath(key) {
		if part.index >= 0 {
			if n.Kind != yaml.SequenceNode || part.index >= len(n.Content) {
				return false
			}
			n = n.Content[part.index]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part.key {
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return true
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblems turns the YAML library's errors ("line 3: field x not found
// in type config.Camera") into Problems with their line, and their key when
// root is given.
func yamlProblems(err error, root *yaml.Node) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		p := Problem{Message: m}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Message = friendlyYAML(sm[2])
			if root != nil {
				p.Key = keyAtLine(root, p.Line)
			}
		}
		out = append(out, p)
	}
	return out
}

var fieldNotFoundRE = regexp.MustCompile(`^field (\S+) not found in type \w+\.(\w+)$`)

func friendlyYAML(msg string) string {
	if sm := fieldNotFoundRE.FindStringSubmatch(msg); sm != nil {
		return fmt.Sprintf("unknown key %q (in %s)", sm[1], strings.ToLower(sm[2]))
	}
	return strings.TrimPrefix(msg, "yaml: ")
}

// lineOf finds the line of the key at a dotted path such as
// "cameras[1].zones[0].polygon" in the YAML tree; when the path is only
// partly present it returns the line of the deepest part found.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range splitPath(path) {
		switch {
		case part.index >= 0:
			if n.Kind != yaml.SequenceNode || part.index >= len(n.Content) {
				return line
			}
			n = n.Content[part.index]
			line = n.Line
		default:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part.key {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		}
	}
	return line
}

type pathPart struct {
	key   string
	index int
}

func splitPath(path string) []pathPart {
	var parts []pathPart
	for _, seg := range strings.Split(path, ".") {
		for seg != "" {
			i := strings.IndexByte(seg, '[')
			if i < 0 {
				parts = append(parts, pathPart{key: seg, index: -1})
				break
			}
			if i > 0 {
				parts = append(parts, pathPart{key: seg[:i], index: -1})
			}
			j := strings.IndexByte(seg, ']')
			if j < i {
				break
			}
			idx, err := strconv.Atoi(seg[i+1 : j])
			if err != nil {
				break
			}
			parts = append(parts, pathPart{index: idx})
			seg = seg[j+1:]
		}
	}
	return parts
}

// keyAtLine returns the dotted path of the key whose value starts on line,
// or "" when no key does.
func keyAtLine(n *yaml.Node, line int) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k := keyAtLine(c, line); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if val.Line == line && (val.Kind == yaml.ScalarNode || key.Line == line) {
				return key.Value
			}
			if sub := keyAtLine(val, line); sub != "" {
				if strings.HasPrefix(sub, "[") {
					return key.Value + sub
				}
				return key.Value + "." + sub
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if sub := keyAtLine(c, line); sub != "" {
				if strings.HasPrefix(sub, "[") {
					return fmt.Sprintf("[%d]%s", i, sub)
				}
				return fmt.Sprintf("[%d].%s", i, sub)
			}
		}
	}
	return ""
}
