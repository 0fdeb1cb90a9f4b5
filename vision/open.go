package vision

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModelClassic is the model name that selects the classic estimator, which
// needs no model file.
const ModelClassic = "classic"

// OpenConfig says which model to open and on which backend.
type OpenConfig struct {
	// Model is a model's name under ModelsDir(), or a folder holding a
	// model.yaml.
	Model string
	// Runner carries the backend, provider, threads and library; its
	// ModelPath, InputName and OutputName come from the manifest.
	Runner RunnerConfig
}

// ResolveModelDir returns the folder of the named model: model itself when
// it is a folder with a model.yaml, else ModelsDir()/model.
func ResolveModelDir(model string) (string, error) {
	if model == "" {
		return "", fmt.Errorf("vision: no model named")
	}
	if strings.ContainsRune(model, os.PathSeparator) || strings.HasPrefix(model, ".") {
		if _, err := os.Stat(filepath.Join(model, "model.yaml")); err != nil {
			return "", fmt.Errorf("vision: model folder %s: no model.yaml there", model)
		}
		return model, nil
	}
	dir := filepath.Join(ModelsDir(), model)
	if _, err := os.Stat(filepath.Join(dir, "model.yaml")); err != nil {
		return "", fmt.Errorf("vision: model %q: no %s (models are looked up in %s; set FLOWWATCH_MODELS to change that)",
			model, filepath.Join(dir, "model.yaml"), ModelsDir())
	}
	return dir, nil
}

// OpenModel loads a model through its manifest, checks the model's tensors
// against the manifest (a model that breaks it is refused, whichever the
// backend), and returns an Estimator running it on the configured backend.
func OpenModel(cfg OpenConfig) (*ModelEstimator, error) {
	dir, err := ResolveModelDir(cfg.Model)
	if err != nil {
		return nil, err
	}
	m, err := LoadManifest(dir)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(); err != nil {
		return nil, err
	}
	rc := cfg.Runner
	rc.ModelPath = m.Path()
	rc.InputName = m.Input.Name
	rc.OutputName = m.Output.Name
	r, err := NewRunner(rc)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", m.Name, err)
	}
	backend := rc.Backend
	if backend == "" {
		backend = BackendONNXRuntime
	}
	provider := rc.Provider
	if provider == "" {
		provider = ProviderCPU
	}
	e, err := NewModelEstimator(m, r, EstimatorInfo{Backend: backend, Model: m.Name, Task: m.Task, Provider: provider})
	if err != nil {
		r.Close()
		return nil, err
	}
	return e, nil
}
