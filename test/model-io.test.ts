import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadModel, saveModel } from "../lib/model-io";
import { writeSynthetic } from "../lib/synthetic";
import { train } from "../lib/train";

test("save then load gives back every array and the manifest; saving again replaces atomically", async () => {
  const root = mkdtempSync(path.join(tmpdir(), "model-"));
  await writeSynthetic(path.join(root, "data"), "small", 5);
  const trained = await train(path.join(root, "data"), { k: 20 });
  const dir = path.join(root, "model");
  await saveModel(dir, trained);
  const loaded = await loadModel(dir);
  assert.deepEqual(loaded.neighbours, trained.neighbours);
  assert.deepEqual(loaded.users, trained.users);
  assert.deepEqual(loaded.movies, trained.movies);
  assert.deepEqual(loaded.popular, trained.popular);
  assert.deepEqual(loaded.manifest.metrics, trained.manifest.metrics);
  assert.equal(loaded.manifest.params.k, 20);
  assert.ok(loaded.manifest.timings.neighbours >= 0);
  assert.equal(loaded.manifest.input.files.length, 2);

  const retrained = await train(path.join(root, "data"), { k: 5 });
  await saveModel(dir, retrained);
  assert.equal((await loadModel(dir)).manifest.params.k, 5);
  assert.deepEqual(readdirSync(root).sort(), ["data", "model"]);

  truncateSync(path.join(dir, "neighbours.sims.bin"), 10);
  await assert.rejects(loadModel(dir), /neighbours\.sims\.bin: expected \d+ bytes \(\d+ float32\), got 10/);
  assert.ok(existsSync(path.join(dir, "model.json")));
});
