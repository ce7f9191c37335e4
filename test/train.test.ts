import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fnv1a32 } from "../lib/hash";
import { neighboursOf } from "../lib/neighbours";
import { historyOf, recommendForUser } from "../lib/recommend";
import { train } from "../lib/train";
import { denseNeighbours, denseRecommend, writeRandomMovieLens } from "./reference";

test("train equals a brute-force reading of the spec, step by step (--no-refit: the evaluation model is saved)", async () => {
  const dir = writeRandomMovieLens(3);
  const k = 7, n = 5;
  const model = await train(dir, { k, n }, { refit: false });
  assert.equal(model.manifest.fit, "train");

  // The spec, densely: merge, liked, split by string hash, encode, X_train, neighbours, recommend, metrics.
  const rows = readFileSync(path.join(dir, "ratings.csv"), "utf8").trim().split("\n").slice(1)
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

/** The spec's matrices of a random MovieLens directory, densely: all likes, all ratings, and the merged rows. */
function denseAll(dir: string) {
  const rows = readFileSync(path.join(dir, "ratings.csv"), "utf8").trim().split("\n").slice(1)
    .map((l) => l.split(",").map(Number)).filter(([, m]) => m !== 999);
  const users = [...new Set(rows.map((r) => r[0]))].sort((a, b) => a - b);
  const movies = [...new Set(rows.map((r) => r[1]))].sort((a, b) => a - b);
  const A = users.map(() => movies.map(() => 0)), R = users.map(() => movies.map(() => 0));
  for (const [u, m, r] of rows) {
    R[users.indexOf(u)][movies.indexOf(m)] = 1;
    if (r >= 3) A[users.indexOf(u)][movies.indexOf(m)] = 1;
  }
  return { users, movies, A, R };
}

for (const [name, similarity] of [
  ["cosine", {}], ["rp3beta", { similarity: "rp3beta", beta: 0.4 }], ["tfidf", { similarity: "tfidf", asym: 0.7, shrink: 2 }], ["bm25", { similarity: "bm25", k1: 5, b: 0.25 }],
] as const) {
  test(`the refit (spec step 13, ${name}) equals a brute-force reading on all likes; its users hold all their ratings`, async () => {
    for (const seed of [3, 11]) {
      const dir = writeRandomMovieLens(seed);
      const k = 6, n = 5;
      const evaluated = await train(dir, { k, n, ...similarity }, { refit: false });
      const model = await train(dir, { k, n, ...similarity });
      const { users, movies, A, R } = denseAll(dir);
      assert.equal(model.manifest.fit, "all");
      assert.deepEqual(model.manifest.metrics, evaluated.manifest.metrics, "the evaluation is the same whichever model is saved");
      assert.equal(model.manifest.counts.allLikes, A.flat().reduce((a, b) => a + b, 0));
      assert.equal(model.manifest.counts.allRatings, R.flat().reduce((a, b) => a + b, 0));
      assert.equal(model.manifest.counts.trainNeighbours, evaluated.neighbours.indices.length);
      assert.deepEqual([...model.users.userId], users);
      assert.deepEqual([...model.movies.movieId], movies);
      assert.deepEqual([...model.movies.likes], movies.map((_, m) => A.reduce((s, row) => s + row[m], 0)));

      const nb = denseNeighbours(A, k, similarity);
      for (let m = 0; m < movies.length; m++) {
        assert.deepEqual([...neighboursOf(model.neighbours, m).indices], nb.indices[m], `neighbours of movie ${movies[m]}`);
        assert.deepEqual([...neighboursOf(model.neighbours, m).sims], nb.sims[m], `sims of movie ${movies[m]}`);
      }
      users.forEach((userId, u) => {
        const rated = R[u].flatMap((v, m) => (v ? [m] : [])), liked = A[u].flatMap((v, m) => (v ? [m] : []));
        const h = historyOf(model, userId);
        assert.deepEqual([...h.rated], rated);
        assert.deepEqual([...h.liked], liked);
        const got = recommendForUser(model, userId, n).recommendations.map((r) => movies.indexOf(r.movieId));
        if (liked.length > 0) assert.deepEqual(got, denseRecommend(nb, liked, rated, n), `user ${userId}`);
        for (const m of got) assert.ok(!rated.includes(m), `user ${userId} is recommended movie ${movies[m]}, which they rated`);
      });
    }
  });
}

test("a known user plus movies just liked: history and exclusions take both", async () => {
  const dir = writeRandomMovieLens(5);
  const model = await train(dir, { k: 6 });
  const { movies, A, R } = denseAll(dir);
  const nb = denseNeighbours(A, 6);
  const userId = model.users.userId[3];
  const { rated, liked } = historyOf(model, userId);
  const now = movies.map((_, m) => m).filter((m) => !rated.includes(m)).slice(0, 2);
  assert.equal(now.length, 2);
  const got = recommendForUser(model, userId, 8, now.map((m) => movies[m])).recommendations.map((r) => movies.indexOf(r.movieId));
  const history = [...new Set([...liked, ...now])].sort((a, b) => a - b), excluded = [...rated, ...now];
  assert.deepEqual(got, denseRecommend(nb, history, excluded, 8));
  for (const m of got) assert.ok(!excluded.includes(m));
  assert.equal(R.length, model.users.userId.length);
  assert.throws(() => recommendForUser(model, userId, 5, [424242]), /unknown movieId: 424242/);
});
