// Writes dist/SOURCES.sha256: the SHA-256 of the bundle's sources, so that
// a Go test (console/webapp_test.go, TestWebBundleFresh) can tell when the
// committed bundle is older than them. Keep both in step:
//   files: src/** and the top-level build files below, sorted by their
//   slash-separated path relative to console/web (byte order);
//   for each: path, NUL, decimal length in bytes, NUL, the content.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const topFiles = ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"];
const trees = ["src", "public"];

function walk(dir, out) {
  for (const name of readdirSync(join(root, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(join(root, rel)).isDirectory()) walk(rel, out);
    else out.push(rel);
  }
}

const files = topFiles.filter((f) => existsSync(join(root, f)));
for (const tree of trees) if (existsSync(join(root, tree))) walk(tree, files);
files.sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));

const hash = createHash("sha256");
for (const rel of files) {
  const content = readFileSync(join(root, rel));
  hash.update(`${rel}\0${content.length}\0`);
  hash.update(content);
}
const digest = hash.digest("hex");
writeFileSync(join(root, "dist", "SOURCES.sha256"), `${digest}\n`);
console.log(`dist/SOURCES.sha256 ${digest} (${files.length} files)`);
