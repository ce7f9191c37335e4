import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fnv1a32 } from "../lib/hash";
import { neighboursOf } from "../lib/neighbours";
import { train } from "../lib/train";
import { denseNeighbours, denseRecommend, writeRandomMovieLens } from "./reference";

test("train equals a brute-force reading of the spec, step by step", async () => {
  const dir = writeRandomMovieLens(3);
  const k = 7, n = 5;
  const model = await train(dir, { k, n });

  // The spec, densely: merge, liked, split by string hash, encode, X_train, neighbours, recommend, metrics.
  const rows = (await import("node:fs")).readFileSync(path.join(dir, "ratings.csv"), "utf8").trim().split("\n").slice(1)
    .map((l) => l.split(",").map(Number)).filter(([, m]) => m !== 999);
  const users = [...new Set(rows.map((r) => r[0]))].sort((a, b) => a - b);
  const movies = [...new Set(rows.map((r) => r[1]))].sort((a, b) => a - b);
  const X = users.map(() => movies.map(() => 0)), T = users.map(() => movies.map(() => 0)), R = users.map(() => movies.map(() => 0));
  for (const [u, m, r] of rows) {
    const [ue, me] = [users.indexOf(u), movies.indexOf(m)];
    const isTest = fnv1a32(`42:split:${u}:${m}`) % 10000 < 5000;
    if (!isTest) R[ue][me] = 1;
    if (r >= 3) (isTest ? T : X)[ue][me] = 1;
  }
  assert.deepEqual([...model.users.userId], users);
  assert.deepEqual([...model.movies.movieId], movies);
  assert.equal(model.manifest.counts.droppedRatings, 1);

  const nb = denseNeighbours(X, k);
  for (let m = 0; m < movies.length; m++) {
    assert.deepEqual([...neighboursOf(model.neighbours, m).indices], nb.indices[m], `neighbours of movie ${movies[m]}`);
    assert.deepEqual([...neighboursOf(model.neighbours, m).sims], nb.sims[m], `sims of movie ${movies[m]}`);
  }

  let precision = 0, recall = 0, hitUsers = 0, liked = 0, count = 0;
  const recommended = new Set<number>();
  users.forEach((_, u) => {
    const history = X[u].flatMap((v, m) => (v ? [m] : [])), relevant = T[u].flatMap((v, m) => (v ? [m] : []));
    if (history.length === 0 || relevant.length === 0) return;
    const top = denseRecommend(nb, history, R[u].flatMap((v, m) => (v ? [m] : [])), n);
    top.forEach((m) => recommended.add(m));
    const hits = top.filter((m) => relevant.includes(m)).length;
    precision += hits / n; recall += hits / relevant.length; hitUsers += hits > 0 ? 1 : 0; liked += relevant.length; count++;
  });
  const { metrics } = model.manifest;
  assert.ok(count > 20);
  assert.equal(metrics.users, count);
  assert.ok(Math.abs(metrics.precision - precision / count) < 1e-12);
  assert.ok(Math.abs(metrics.recall - recall / count) < 1e-12);
  assert.equal(metrics.total_hits, hitUsers);
  assert.equal(metrics.total_liked, liked);
  assert.equal(metrics.coverage, recommended.size / nb.indices.filter((l) => l.length > 0).length);
});

test("sampleUsers and evalUsers shrink the run as asked", async () => {
  const dir = writeRandomMovieLens(4);
  const model = await train(dir, { sampleUsers: 20, evalUsers: 10 });
  assert.equal(model.users.userId.length, 20);
  assert.equal(model.manifest.metrics.users, 10);
  assert.equal(model.manifest.baseline!.users, 10);
  await assert.rejects(train(dir, { testFraction: 1.5 }), /testFraction must be a number in \(0, 1\), got 1.5/);
});
