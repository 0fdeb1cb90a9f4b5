package console

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// webDist is the browser app's bundle, built from console/web by `make web`
// and committed, so a build needs no Node.
//
//go:embed all:web/dist
var webDist embed.FS

// webTypes are the content types of the bundle's files, fixed here rather
// than taken from the host's mime tables.
var webTypes = map[string]string{
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".html":  "text/html; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".webp":  "image/webp",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

func webContentType(name string) string {
	ext := path.Ext(name)
	if t, ok := webTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// webApp serves the embedded bundle.
type webApp struct {
	dist  fs.FS
	index []byte
	// gz holds each asset compressed once, on its first gzip request.
	gz sync.Map // name -> *gzAsset
}

type gzAsset struct {
	once sync.Once
	body []byte // nil when compression does not pay
}

// registerWebApp serves the browser app: index.html at / and /public (the
// public comfort page, no login), and the hashed bundle files under
// /assets/, cached for good since their names change with their content.
func registerWebApp(mux *http.ServeMux) {
	dist, err := fs.Sub(webDist, "web/dist")
	if err != nil {
		panic("console: embedded web bundle: " + err.Error()) // fixed path; cannot fail
	}
	index, err := fs.ReadFile(dist, "index.html")
	if err != nil {
		panic("console: embedded web bundle has no index.html: run make web")
	}
	app := &webApp{dist: dist, index: index}
	mux.HandleFunc("GET /{$}", app.serveIndex)
	mux.HandleFunc("GET /public", app.serveIndex)
	mux.HandleFunc("GET /assets/{file...}", app.serveAsset)
}

func (a *webApp) serveIndex(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	_, _ = w.Write(a.index)
}

func (a *webApp) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := "assets/" + r.PathValue("file")
	if !fs.ValidPath(name) {
		writeError(w, http.StatusNotFound, "no such asset: %s", r.URL.Path)
		return
	}
	body, err := fs.ReadFile(a.dist, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such asset: %s", r.URL.Path)
		return
	}
	h := w.Header()
	h.Set("Content-Type", webContentType(name))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	if gz := a.gzipped(name, body); gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = gz
	}
	// embed keeps no modification times: no Last-Modified, but
	// ServeContent still answers HEAD and ranges
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func (a *webApp) gzipped(name string, body []byte) []byte {
	if !compressible(name) || len(body) < 1024 {
		return nil
	}
	v, _ := a.gz.LoadOrStore(name, &gzAsset{})
	g := v.(*gzAsset)
	g.once.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			g.body = buf.Bytes()
		}
	})
	return g.body
}

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".js", ".mjs", ".css", ".html", ".json", ".map", ".svg", ".txt":
		return true
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}
