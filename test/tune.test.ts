import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fnv1a32 } from "../lib/hash";
import { tune, type Grid } from "../lib/tune";
import { writeRandomMovieLens } from "./reference";

const grid: Grid = { similarity: ["cosine", "rp3beta"], shrink: [0, 5], beta: [0.2], k: [3, 10] };

test("tuning never reads test ratings; test is scored once with the chosen configuration", async () => {
  const dir = writeRandomMovieLens(21);
  const original = await tune(dir, { n: 5 }, grid);
  assert.equal(original.rows.length, 1 + 3 * 2);
  assert.equal(original.rows[0].similarity, "popularity");
  const best = original.rows.slice(1).reduce((a, b) => (b.precision > a.precision ? b : a));
  assert.deepEqual(original.best, best);
  const { params, tuning } = original.model.manifest;
  assert.deepEqual([params.similarity, params.k], [best.similarity, best.k]);
  assert.equal(tuning!.length, original.rows.length);

  // Turn every test like into a dislike and back: the grid must not move, the test metrics must.
  const file = path.join(dir, "ratings.csv");
  const lines = readFileSync(file, "utf8").trim().split("\n");
  writeFileSync(file, [lines[0], ...lines.slice(1).map((line) => {
    const [u, m, r, t] = line.split(",");
    const isTest = fnv1a32(`42:split:${u}:${m}`) % 10000 < 5000;
    return isTest ? [u, m, Number(r) >= 3 ? "1.0" : "5.0", t].join(",") : line;
  })].join("\n") + "\n");
  const perturbed = await tune(dir, { n: 5 }, grid);
  assert.deepEqual(perturbed.rows, original.rows);
  assert.notDeepEqual(perturbed.model.manifest.metrics, original.model.manifest.metrics);
});
