package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// webSourcesHash is console/web/hash-sources.mjs in Go: the SHA-256 over
// the bundle's sources (src/**, public/** and the top-level build files),
// sorted by slash path, each as path NUL length NUL content.
func webSourcesHash(root string) (string, error) {
	var files []string
	for _, f := range []string{"index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			files = append(files, f)
		}
	}
	for _, tree := range []string{"src", "public"} {
		if _, err := os.Stat(filepath.Join(root, tree)); err != nil {
			continue
		}
		err := filepath.WalkDir(filepath.Join(root, tree), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			return "", err
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, rel := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func TestWebBundleFresh(t *testing.T) {
	want, err := webSourcesHash("web")
	if err != nil {
		t.Fatalf("hash console/web sources: %v", err)
	}
	got, err := os.ReadFile(filepath.Join("web", "dist", "SOURCES.sha256"))
	if err != nil {
		t.Fatalf("console/web/dist is older than its sources: run make web (%v)", err)
	}
	if strings.TrimSpace(string(got)) != want {
		t.Fatalf("console/web/dist is older than its sources: run make web (sources %s, bundle built from %s)", want, strings.TrimSpace(string(got)))
	}
}

func webIndex(t *testing.T) string {
	t.Helper()
	b, err := fs.ReadFile(webDist, "web/dist/index.html")
	if err != nil {
		t.Fatalf("embedded index.html: %v", err)
	}
	return string(b)
}

var webRefRE = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

func TestWebIndexReferencesExist(t *testing.T) {
	index := webIndex(t)
	refs := webRefRE.FindAllStringSubmatch(index, -1)
	if len(refs) == 0 {
		t.Fatal("index.html references no files")
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/assets/") {
			t.Errorf("index.html references %q: want only bundle files under /assets/", ref)
			continue
		}
		if _, err := fs.Stat(webDist, "web/dist"+ref); err != nil {
			t.Errorf("index.html references %q, which is not in console/web/dist", ref)
		}
	}
	// the console's CSP allows no inline script or style
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(index) || strings.Contains(index, "<style") || strings.Contains(index, " style=") {
		t.Error("index.html has inline script or style")
	}
}

func TestWebAppServes(t *testing.T) {
	mux := http.NewServeMux()
	registerWebApp(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultTransport.RoundTrip(req) // no transparent gunzip
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	index := webIndex(t)
	for _, p := range []string{"/", "/public"} {
		res := get(p)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || string(body) != index {
			t.Errorf("GET %s: %d, body matches index.html: %v", p, res.StatusCode, string(body) == index)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", p, cc)
		}
	}

	wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	seen := map[string]bool{}
	for _, m := range webRefRE.FindAllStringSubmatch(index, -1) {
		ref := m[1]
		ext := filepath.Ext(ref)
		want, ok := wantType[ext]
		if !ok {
			continue
		}
		seen[ext] = true
		file, _ := fs.ReadFile(webDist, "web/dist"+ref)
		res := get(ref)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, file) {
			t.Errorf("GET %s: %d, %d bytes, want the %d bytes of the file", ref, res.StatusCode, len(body), len(file))
		}
		if ct := res.Header.Get("Content-Type"); ct != want {
			t.Errorf("GET %s: Content-Type %q, want %q", ref, ct, want)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET %s: Cache-Control %q, want immutable", ref, cc)
		}
		gz := get(ref, "Accept-Encoding", "gzip")
		if gz.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s with Accept-Encoding gzip: not compressed", ref)
			continue
		}
		zr, err := gzip.NewReader(gz.Body)
		if err != nil {
			t.Fatalf("GET %s gzip: %v", ref, err)
		}
		plain, _ := io.ReadAll(zr)
		if !bytes.Equal(plain, file) || gz.Header.Get("Content-Type") != want {
			t.Errorf("GET %s gzip: %d bytes unpacked (want %d), type %q", ref, len(plain), len(file), gz.Header.Get("Content-Type"))
		}
	}
	if !seen[".js"] || !seen[".css"] {
		t.Errorf("index.html should load a script and a stylesheet from /assets/; saw %v", seen)
	}

	for _, p := range []string{"/assets/nope.js", "/assets/../index.html", "/assets/"} {
		if res := get(p); res.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200, want an error", p)
		}
	}
}
