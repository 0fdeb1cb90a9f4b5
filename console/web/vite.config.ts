import { defineConfig } from "vite";

// The console serves the bundle itself (console/webapp.go): index.html at /
// and /public, hashed files under /assets/. `npx vite` proxies the API to a
// running `flowwatch serve` on FLOWWATCH_URL (default 127.0.0.1:8080).
const backend = process.env.FLOWWATCH_URL ?? "http://127.0.0.1:8080";
const proxy = {
  "/api": { target: backend, changeOrigin: false },
  "/whep": { target: backend, changeOrigin: false },
  "/ws": { target: backend, ws: true, changeOrigin: false },
};

// The console's own policy: no inline script or style, video from blob:
// media streams, images from blob: URLs, the feed over ws(s).
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 800,
  },
  server: { proxy },
  preview: { proxy, headers: { "Content-Security-Policy": csp } },
});
