package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
)

//go:embed demo.yaml
var demoYAML []byte

// DemoName is the file name reported for problems in the embedded demo
// configuration.
const DemoName = "<demo config>"

// Load reads, checks and completes the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Demo returns the embedded demo configuration: the built-in simulator
// serving the sample videos as cameras, with zones and areas over them.
func Demo() (*Config, error) {
	return Parse(DemoName, demoYAML)
}

// DemoYAML returns the text of the embedded demo configuration, which also
// serves as a commented example.
func DemoYAML() []byte { return bytes.Clone(demoYAML) }

// Parse checks and completes a configuration given as YAML text; name is
// used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	root, err := DecodeYAML(name, data, &c)
	if err != nil {
		return nil, err
	}
	ApplyDefaults(&c)
	if problems := validate(&c); len(problems) > 0 {
		return nil, Located(name, root, problems)
	}
	return &c, nil
}

// WithRules returns a copy of base whose rules are replaced by the `rules:`
// mapping of a candidate rules file (the only key it may hold), with
// defaults applied and everything validated again; name is used in error
// messages. Planners use it to backtest thresholds on stored history.
func WithRules(base *Config, name string, data []byte) (*Config, error) {
	var cand struct {
		Rules Rules `yaml:"rules"`
	}
	root, err := DecodeYAML(name, data, &cand)
	if err != nil {
		return nil, err
	}
	if !HasKey(root, "rules") {
		return nil, fmt.Errorf("%s: no rules: mapping", name)
	}
	c := *base
	c.Rules = cand.Rules
	ApplyDefaults(&c)
	if problems := validate(&c); len(problems) > 0 {
		return nil, Located(name, root, problems)
	}
	return &c, nil
}
