package main

import (
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"flowwatch/vision"
)

// FuzzLoadZones feeds arbitrary files to `flowwatch analyze --zones`: the
// YAML is read, and zones it accepts go on to vision.NewZoneSet and to the
// masks a count uses. Nothing may panic; a refused file gets an error
// naming the file; an accepted one has zones; and every zone NewZoneSet
// takes has a coverage in [0, 1] per cell of a small grid.
func FuzzLoadZones(f *testing.F) {
	f.Add([]byte("zones:\n  - name: left\n    polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]\n  - name: right\n    polygon: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]\n"))
	f.Add([]byte("zones:\n  - name: z\n    polygon: [[0,0],[1,1]]\n"))
	f.Add([]byte("zones: []\n"))
	f.Add([]byte("zones:\n  - {name: a, polygon: [[0,0],[1,0],[1,1]], capacity: 3}\n  - {name: a, polygon: [[0,0],[1,0],[0,1]]}\n"))
	f.Add([]byte("zones:\n  - {name: all, polygon: [[0,0],[1,0],[1,1]]}\n"))
	f.Add([]byte("zones:\n  - {name: x, polygon: [[0,0],[1,1],[1,0],[0,1]]}\n")) // crossing edges
	f.Add([]byte("zones:\n  - {name: x, polygon: [[0,0],[2,0],[1,1]]}\n"))
	f.Add([]byte("zones:\n  - {name: x, polygon: [[0,0],[.nan,0],[1,1]]}\n"))
	f.Add([]byte("zones:\n  - {name: x, polygon: [[0,0],[1,0],[1,1]], colour: red}\n"))
	f.Add([]byte("zones: &a [*a]\n"))
	f.Add([]byte("\xff\xfe"))
	path := filepath.Join(f.TempDir(), "zones.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		zones, err := loadZones(path)
		if err != nil {
			if zones != nil {
				t.Fatalf("zones %v and error %v both returned", zones, err)
			}
			if !strings.Contains(err.Error(), "zones") {
				t.Fatalf("error %q does not say it is about the zones", err)
			}
			return
		}
		if len(zones) == 0 {
			t.Fatal("no zones and no error")
		}
		set, err := vision.NewZoneSet(zones)
		if err != nil {
			return
		}
		for _, z := range set.Zones() {
			cov, ok := set.Coverage(z.Name, 7, 5)
			if !ok {
				t.Fatalf("zone %q accepted but has no coverage", z.Name)
			}
			for i, c := range cov {
				if math.IsNaN(c) || c < -1e-9 || c > 1+1e-9 {
					t.Fatalf("zone %q: cell %d covered %g, want [0, 1]", z.Name, i, c)
				}
			}
		}
	})
}

// FuzzInputName feeds arbitrary inputs (file paths and camera URLs, as
// typed on the command line, passwords with '/', '?' or '#' left
// unescaped included) to the name analyze shows for them in logs and file
// names: it must show no 4 bytes in a row of the URL's password that the
// rest of the URL does not hold as well.
func FuzzInputName(f *testing.F) {
	for _, c := range [][2]string{
		{"s3cret", "cam.local:554/streams/main"}, {"s3cret", "cam.local"}, {"pa#ss-s3cret", "127.0.0.1:8554/gate"},
		{"s3cret", "[::1]:554/"}, {"s3cret", "host/a/b/s3cret-too"}, {"p?ss-word", "h/x"}, {"pa/ss-word", "h/gate"},
		{"", "/data/clips/gate.mp4"}, {"", "://"}, {"", "rtsp://:pw@/"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, password, rest string) {
		// A password a user could type in a URL: no '@' (which ends
		// it), no white space or quote (which end a URL in text), no
		// escapes.
		if len(password) < 4 || strings.ContainsAny(password, "@%\" \t\r\n\"'") {
			inputName(rest) // must not panic either
			return
		}
		const prefix = "rtsp://admin:"
		in := prefix + password + "@" + rest
		got := inputName(in)
		unescaped, _ := url.PathUnescape(rest)
		for i := 0; i+4 <= len(password); i++ {
			w := password[i : i+4]
			if strings.Contains(got, w) && !strings.Contains(rest, w) && !strings.Contains(unescaped, w) && !strings.Contains(prefix, w) {
				t.Fatalf("inputName(%q) = %q shows %q of the password %q", in, got, w, password)
			}
		}
	})
}
