import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";

const ROOT = path.resolve(__dirname, "..", "..");
const LIB = path.join(ROOT, "lib");
const NOTEBOOK = path.join(LIB, "notebook");
/** Packages only the notebooks' tables and figures use: the image leaves them out. */
const NOTEBOOK_PACKAGES = ["danfojs-node", "mathjs", "plotly.js-dist", "tslab"];

/** Every module specifier a TypeScript file imports, requires or exports from. */
function specifiers(file: string): string[] {
  const source = readFileSync(file, "utf8");
  return [...source.matchAll(/(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)"([^"]+)"/g)].map((m) => m[1]);
}

const inNotebook = (p: string) => p === NOTEBOOK || p.startsWith(NOTEBOOK + path.sep);
const tsFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []);

test("core lib/ (train, serve, CLI) never imports lib/notebook/ nor the notebooks' packages", () => {
  const core = tsFiles(LIB).filter((f) => !inNotebook(f));
  assert.ok(core.length > 10 && tsFiles(NOTEBOOK).length >= 3, "lib/ and lib/notebook/ hold the modules");
  const offending = core.flatMap((file) => specifiers(file)
    .filter((s) => (s.startsWith(".") && inNotebook(path.resolve(path.dirname(file), s)))
      || NOTEBOOK_PACKAGES.some((p) => s === p || s.startsWith(`${p}/`)))
    .map((s) => `${path.relative(ROOT, file)} imports ${s}`));
  assert.deepEqual(offending, []);
});
