package samples

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMediaDir(t *testing.T) {
	t.Setenv(MediaEnv, "/srv/flowwatch/media")
	if got := MediaDir(); got != "/srv/flowwatch/media" {
		t.Errorf("MediaDir with %s set: %q", MediaEnv, got)
	}
	t.Setenv(MediaEnv, "")
	want := defaultMediaDir
	if want == "" {
		want = filepath.Join("samples", "media")
	}
	if got := MediaDir(); got != want {
		t.Errorf("MediaDir without %s: %q, want %q", MediaEnv, got, want)
	}
	s, ok := LookupBuiltin("vtest")
	if !ok || s.Path() != filepath.Join(want, "vtest.h264") {
		t.Errorf("vtest sample at %q (found %v), want %q", s.Path(), ok, filepath.Join(want, "vtest.h264"))
	}
}

func TestBuiltinManifest(t *testing.T) {
	names := map[string]bool{}
	for _, s := range Builtin() {
		if names[s.Name] {
			t.Errorf("sample %q listed twice", s.Name)
		}
		names[s.Name] = true
		if !pathNamePattern.MatchString(s.Name) || s.File == "" || s.Description == "" ||
			!s.FrameRate.Valid() || s.Width <= 0 || s.Height <= 0 {
			t.Errorf("sample %+v lacks a servable name, file, description, frame rate or size", s)
		}
		if got, ok := LookupBuiltin(s.Name); !ok || got.Name != s.Name {
			t.Errorf("LookupBuiltin(%q) = %+v, %v", s.Name, got, ok)
		}
	}
	for _, want := range []string{"vtest", "synth-sparse", "synth-dense"} {
		if !names[want] {
			t.Errorf("built-in sample %q missing", want)
		}
	}
	if _, ok := LookupBuiltin("nosuch"); ok {
		t.Error("LookupBuiltin found a sample that is not built in")
	}
	// Builtin hands out copies: changing one changes nothing else.
	b := Builtin()
	b[0].Name = "changed"
	if Builtin()[0].Name == "changed" {
		t.Error("Builtin returned shared state")
	}
}

// TestBuiltinMediaMatchesManifest checks the media that setup made, where it
// is present, against what the manifest says of it.
func TestBuiltinMediaMatchesManifest(t *testing.T) {
	requireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found := 0
	for _, s := range Builtin() {
		if _, err := os.Stat(s.Path()); errors.Is(err, os.ErrNotExist) {
			t.Logf("sample %s: %s not made yet (make setup)", s.Name, s.Path())
			continue
		}
		found++
		st := probeStream(t, ctx, s.Path())
		rate, err := ParseFrameRate(st["r_frame_rate"].(string))
		if err != nil || rate.Float() != s.FrameRate.Float() ||
			st["width"] != float64(s.Width) || st["height"] != float64(s.Height) {
			t.Errorf("sample %s: %s is %vx%v at %v, manifest says %dx%d at %s",
				s.Name, s.Path(), st["width"], st["height"], st["r_frame_rate"], s.Width, s.Height, s.FrameRate)
		}
		if s.Truth != "" {
			if _, err := os.Stat(s.TruthPath()); err != nil {
				t.Errorf("sample %s: truth file: %v", s.Name, err)
			}
		}
	}
	if found == 0 {
		t.Skipf("no built-in sample media in %s yet; make setup makes it", MediaDir())
	}
}
