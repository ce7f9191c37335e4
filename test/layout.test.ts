import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readMovies } from "../lib/ingest";
import { syntheticDir } from "../lib/synthetic";

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

// What a reader of the repository sees in the committed notebooks: a real run, numbered cells, no machine's paths.
const NOTEBOOKS = path.join(ROOT, "notebooks");
interface Output { text?: string | string[]; data?: Record<string, string | string[]> }
interface Cell { cell_type: string; source: string | string[]; execution_count?: number | null; outputs?: Output[] }
const join = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join("") : t ?? "");
const committed = () => readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort()
  .map((name) => ({ name, cells: (JSON.parse(readFileSync(path.join(NOTEBOOKS, name), "utf8")) as { cells: Cell[] }).cells }));
/** The text of a notebook's outputs, the embedded plotly.js bundle (compressed, base64) left out. */
const outputText = (cells: Cell[]) => cells.flatMap((c) => (c.outputs ?? []).flatMap((o) =>
  [join(o.text), ...Object.values(o.data ?? {}).map(join)])).filter((t) => !t.includes("new DecompressionStream")).join("\n");

test("committed notebooks: every code cell executed, numbered in order, with outputs from ml-latest-small", () => {
  const notebooks = committed();
  assert.ok(notebooks.length >= 9, `notebooks 00 to 08, found ${notebooks.map((n) => n.name).join(", ")}`);
  for (const { name, cells } of notebooks) {
    const counts = cells.filter((c) => c.cell_type === "code" && join(c.source).trim() !== "").map((c) => c.execution_count);
    assert.deepEqual(counts, counts.map((_, i) => i + 1), `${name}: execution counts`);
  }
  const ingest = outputText(notebooks.find((n) => n.name === "01-ingest.ipynb")!.cells);
  assert.match(ingest, /data: \.\.\/data\/ml-latest-small\n/);
  assert.match(ingest, /read 100,836 ratings and 9,742 movies/);
});

test("committed notebooks show no absolute or machine path and no synthetic title", async () => {
  const synthetic = new Set((await readMovies(path.join(await syntheticDir("small"), "movies.csv"))).movies.title
    .filter((t) => /^\S+ \S+ \d{2,} \(\d{4}\)$/.test(t))); // "Road Road 42 (1975)"; not "Iron Man 2 (2010)"
  for (const { name, cells } of committed()) {
    const text = outputText(cells);
    const paths = text.match(/(?:^|[\s"'`(=:])(?:\/(?:home|root|tmp|work|usr|var|mnt|opt|srv|Users|private)\/|[A-Za-z]:\\|file:\/)[^\s"'<]*/gm) ?? [];
    assert.deepEqual(paths, [], `${name}: absolute paths in the outputs`);
    assert.ok(!text.includes(".cache"), `${name}: an output names a .cache folder`);
    const titles = (text.match(/[^\s>;]+ [^\s<;]+ \d{2,} \(\d{4}\)/g) ?? []).filter((t) => synthetic.has(t));
    assert.deepEqual(titles, [], `${name}: synthetic titles in the outputs`);
  }
});

test("npm run notebooks on a machine without Jupyter says which packages to install, for Debian and for pip", () => {
  const { status, stdout, stderr } = spawnSync(process.execPath, [path.join(ROOT, "dist", "scripts", "notebooks.js")],
    { env: { PATH: "", HOME: process.env.HOME }, encoding: "utf8", timeout: 30_000 });
  assert.equal(status, 1);
  assert.equal(stdout, "");
  assert.match(stderr, /^error: no jupyter command on PATH\. Install Jupyter: Debian or Ubuntu: sudo apt-get install jupyter-nbconvert .*; elsewhere: pip install nbconvert .*\n$/);
});
