// Package config is flowwatch's one configuration schema: cameras and their
// zones, areas, alert rules, users, storage, the console and the built-in
// simulator. It loads YAML strictly (unknown keys are errors), fills every
// default in one place (Defaults), and validates every value, reporting each
// problem with the file, the line and the key it concerns.
package config
