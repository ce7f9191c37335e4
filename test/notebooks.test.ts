import { execFileSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { genresOf } from "../lib/features";
import { readMovies } from "../lib/ingest";
import { DEFAULTS } from "../lib/params";
import { PRESETS, syntheticDir } from "../lib/synthetic";
import { openChromium } from "../scripts/chromium";
import { JUPYTER_DIR, ROOT, cellsOf, executeNotebooks, htmlOutputs, jupyterCommand, jupyterEnv, missingJupyter, notebookFiles } from "../scripts/jupyter";

interface Table { caption: string; head: string[]; rows: string[][] }
interface Rendered { figures: number; drawn: number; tables: Table[] }

const files = notebookFiles();
const executed = (name: string) => path.join(out, name);
let out = "";
let problems: string[] = [];
let chromium: Awaited<ReturnType<typeof openChromium>> | undefined;
const rendered = new Map<string, Rendered>();

before(async () => {
  const missing = await missingJupyter();
  if (missing) throw new Error(`the notebook test needs Jupyter: ${missing}`);
  out = await mkdtemp(path.join(os.tmpdir(), "notebooks-test-"));
  // Every notebook on the synthetic set every machine has, 00 included, which otherwise downloads ml-latest-small.
  const env = { ...process.env, MOVIELENS_DATA: await syntheticDir("small") };
  const t0 = performance.now();
  const results = await executeNotebooks(files, out, env, (e) => console.log(`${e.name}: ${e.seconds.toFixed(0)} s, ${e.problems.length === 0 ? "ok" : "failed"}`));
  problems = results.flatMap((e) => e.problems);
  console.log(`executed ${files.length} notebooks in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  chromium = await openChromium();
}, { timeout: 20 * 60_000 });

after(async () => {
  await chromium?.close();
  if (out) await rm(out, { recursive: true, force: true });
});

/** A notebook's HTML outputs opened in Chromium, offline: its figures drawn, its tables read. */
async function render(name: string): Promise<Rendered> {
  const cached = rendered.get(name);
  if (cached) return cached;
  const page = await chromium!.context.newPage();
  try {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.setContent(`<html><body>${htmlOutputs(executed(name)).map((h) => `<div>${h}</div>`).join("\n")}</body></html>`);
    // In-page code as strings: the project compiles without the DOM library.
    await page.waitForFunction(`[...document.querySelectorAll(".plotly-figure")].every((f) => f.querySelector(".main-svg"))`,
      undefined, { timeout: 60_000 }).catch(() => undefined); // a figure left undrawn fails below, by name
    assert.deepEqual(errors, [], `${name}: errors in the page`);
    const result = await page.evaluate<Rendered>(`({
      figures: document.querySelectorAll(".plotly-figure").length,
      drawn: [...document.querySelectorAll(".plotly-figure")].filter((f) => f.querySelector(".main-svg")).length,
      tables: [...document.querySelectorAll("table.dataframe")].map((t) => ({
        caption: t.querySelector("caption")?.textContent ?? "",
        head: [...t.querySelectorAll("thead th")].map((th) => th.textContent),
        rows: [...t.querySelectorAll("tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
      })),
    })`);
    rendered.set(name, result);
    return result;
  } finally {
    await page.close();
  }
}

const tableOf = (r: Rendered, caption: string) => {
  const t = r.tables.find((t) => t.caption.startsWith(caption));
  assert.ok(t, `no table captioned "${caption}"; captions: ${r.tables.map((t) => t.caption).join(" | ")}`);
  return t;
};
const column = (t: Table, name: string) => t.rows.map((row) => row[t.head.indexOf(name)]);
const num = (s: string) => Number(s.replace(/,/g, ""));

test("the tslab kernel is the project's own, registered under .cache/jupyter, not the user's", () => {
  const { kernelspecs } = JSON.parse(execFileSync(jupyterCommand()!, ["kernelspec", "list", "--json"], { env: jupyterEnv(process.env), encoding: "utf8" })) as
    { kernelspecs: Record<string, { resource_dir: string; spec: { argv: string[] } }> };
  assert.equal(kernelspecs.tslab?.resource_dir, path.join(JUPYTER_DIR, "kernels", "tslab"));
  assert.deepEqual(kernelspecs.tslab.spec.argv.slice(0, 2), [process.execPath, path.join(ROOT, "node_modules", "tslab", "bin", "tslab")]);
});

test("every notebook runs top to bottom without an error output, each cell numbered", () => {
  assert.ok(files.length >= 9, `expected notebooks 00 to 08 in notebooks/, found ${files.length}`);
  assert.equal(problems.length, 0, `errors in the notebooks:\n${problems.join("\n")}`);
  const counts = cellsOf(executed("01-ingest.ipynb")).filter((c) => c.cell_type === "code").map((c) => c.execution_count);
  assert.deepEqual(counts, counts.map((_, i) => i + 1));
});

test("figures draw offline from the plotly.js embedded once per notebook; notebooks stay small", async () => {
  for (const file of files) {
    const name = path.basename(file);
    const html = htmlOutputs(executed(name));
    const bundles = html.filter((h) => h.includes("new DecompressionStream")).length;
    const { figures, drawn } = await render(name);
    assert.equal(bundles, figures > 0 ? 1 : 0, `${name}: plotly.js embedded ${bundles} times for ${figures} figures`);
    assert.equal(drawn, figures, `${name}: ${drawn} of ${figures} figures drawn`);
    assert.ok(!html.some((h) => /<script[^>]+src=/.test(h)), `${name}: an output loads a script from elsewhere`);
    const { size } = await stat(executed(name));
    assert.ok(size < 4e6, `${name}: ${size} bytes executed`);
  }
  for (const name of ["01-ingest.ipynb", "02-genres.ipynb", "05-neighbours.ipynb", "06-evaluation.ipynb"]) {
    assert.ok((await render(name)).figures > 0, `${name} has no figure`);
  }
});

test("01: the summary counts the synthetic set's ratings and users", async () => {
  const summary = tableOf(await render("01-ingest.ipynb"), "ratings summary");
  const value = (statistic: string) => num(summary.rows.find((r) => r[0] === statistic)![1]);
  assert.equal(value("ratings"), PRESETS.small.ratings);
  assert.equal(value("users"), PRESETS.small.users);
  assert.ok(value("min rating") >= 0.5 && value("max rating") <= 5);
});

test("02: the one-hot table has one column per genre, sorted, matching each movie's genres", async () => {
  const { movies } = await readMovies(path.join(await syntheticDir("small"), "movies.csv"));
  const genres = [...new Set(movies.genres.flatMap(genresOf))].sort();
  const r = await render("02-genres.ipynb");
  const before = tableOf(r, "movies before one-hot"), onehot = tableOf(r, "movies after one-hot");
  assert.deepEqual(onehot.head, ["movieId", "title", ...genres]);
  assert.equal(onehot.rows.length, before.rows.length);
  onehot.rows.forEach((row, i) => {
    const listed = genresOf(before.rows[i][2]);
    assert.deepEqual(genres.filter((_, g) => row[2 + g] === "1"), [...listed].sort(), `row ${i}: ${before.rows[i][1]}`);
  });
});

test("03: train and test split every rating, about half each", async () => {
  const split = tableOf(await render("03-split.ipynb"), "ratings by part");
  const all = column(split, "all").map(num);
  assert.equal(all[0] + all[1], PRESETS.small.ratings);
  for (const share of column(split, "share of ratings").map(num)) assert.ok(Math.abs(share - DEFAULTS.testFraction) < 0.02, `share ${share}`);
});

test("05: the cosine worked by hand equals the stored similarity", async () => {
  const cosine = tableOf(await render("05-neighbours.ipynb"), "cosine of movieId");
  const [c, nm, nj, formula, , stored] = cosine.rows[0].map(num);
  assert.ok(c > 0 && c <= Math.min(nm, nj));
  assert.equal(formula, stored);
});

test("06: the metrics stand beside the popularity baseline, on the same users", async () => {
  const r = await render("06-evaluation.ipynb");
  const metrics = tableOf(r, `n = ${DEFAULTS.n}`);
  assert.deepEqual(metrics.head, ["metric", "model", "popularity"]);
  const row = (name: string) => metrics.rows.find((m) => m[0] === name)!.slice(1).map(num);
  for (const name of [`precision@${DEFAULTS.n}`, `recall@${DEFAULTS.n}`, `ndcg@${DEFAULTS.n}`, "hitrate"]) {
    for (const v of row(name)) assert.ok(v >= 0 && v <= 1, `${name} ${v}`);
  }
  const [users, baselineUsers] = row("users");
  assert.ok(users > 0 && users === baselineUsers);
  assert.equal(tableOf(r, "metrics as n varies").rows.length, 5);
  assert.equal(tableOf(r, "metrics as k varies").rows.length, 5);
});

test("07: the served model recommends n movies the user never rated; the evaluation's hits are their test likes", async () => {
  const r = await render("07-inference.ipynb");
  const history = tableOf(r, "user 1's history");
  assert.match(history.caption, new RegExp(`all ${history.rows.length} movies rated`));
  const rated = new Set(column(history, "movieId"));
  const recs = tableOf(r, "recommended to user 1");
  assert.match(recs.caption, /none seen before/);
  assert.equal(recs.rows.length, DEFAULTS.n);
  assert.deepEqual(column(recs, "movieId").filter((id) => rated.has(id)), []);
  assert.equal(tableOf(r, "movies similar to").rows.length, DEFAULTS.n);

  const trainRated = new Set(column(tableOf(r, "user 1's train history"), "movieId"));
  const liked = new Set(history.rows.filter((row) => row[history.head.indexOf("liked")] === "yes").map((row) => row[0]));
  const fromTrain = tableOf(r, "recommended to user 1 from train");
  const hits = fromTrain.rows.filter((row) => row[fromTrain.head.indexOf("liked in test")] === "yes").map((row) => row[1]);
  assert.match(fromTrain.caption, new RegExp(`: ${hits.length} of ${DEFAULTS.n} hits`));
  assert.ok(trainRated.size > 0 && trainRated.size < rated.size, "the train history is part of the whole");
  for (const id of hits) assert.ok(liked.has(id) && !trainRated.has(id), `hit ${id}: liked, and not in train`);
  for (const id of column(fromTrain, "movieId")) if (!hits.includes(id)) assert.ok(!liked.has(id) || trainRated.has(id), `${id}: a test like not marked`);
});

test("00: the quick start compares the original, the recommended setting and popularity, and recommends", async () => {
  const r = await render("00-quick-start.ipynb");
  const metrics = tableOf(r, `test metrics at n = ${DEFAULTS.n}`);
  assert.deepEqual(metrics.head.slice(0, 3), ["method", "setting", "precision"]);
  assert.deepEqual(column(metrics, "method"), ["original", "recommended", "popularity"]);
  for (const p of column(metrics, "precision").map(num)) assert.ok(p > 0 && p <= 1, `precision ${p}`);
  assert.equal(tableOf(r, "recommended to user 1").rows.length, DEFAULTS.n);
  assert.equal(tableOf(r, "movies similar to").rows.length, DEFAULTS.n);
});
