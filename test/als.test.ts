import { test } from "node:test";
import assert from "node:assert/strict";
import { csrFromDense } from "../lib/csr";
import { type Factors, fitAls, newFactorScratch, rankWithFactors, userFactors } from "../lib/als";
import { nearestNeighbours } from "../lib/neighbours";
import { normalizeRows, transpose } from "../lib/csr";
import { random } from "../lib/synthetic";
import { randomLikes, writeRandomMovieLens } from "./reference";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadModel, saveModel } from "../lib/model-io";
import { historyOf, recommendForMovies, recommendForUser } from "../lib/recommend";
import { train } from "../lib/train";

const options = { factors: 5, regularization: 0.1, confidence: 4, iterations: 1, seed: 3 };

/** Dense solve of (GᵀG + reg I + sum (c - 1) g gᵀ) x = sum c g over the liked rows of G (Gaussian elimination). */
function exactRow(G: number[][], liked: number[], reg: number, confidence: number): number[] {
  const f = G[0].length, c = 1 + confidence;
  const A = Array.from({ length: f }, (_, i) => Array.from({ length: f }, (_, j) => G.reduce((s, g) => s + g[i] * g[j], i === j ? reg : 0)));
  const b = new Array<number>(f).fill(0);
  for (const m of liked) for (let i = 0; i < f; i++) {
    b[i] += c * G[m][i];
    for (let j = 0; j < f; j++) A[i][j] += (c - 1) * G[m][i] * G[m][j];
  }
  for (let i = 0; i < f; i++) for (let r = i + 1; r < f; r++) {
    const q = A[r][i] / A[i][i];
    for (let j = i; j < f; j++) A[r][j] -= q * A[i][j];
    b[r] -= q * b[i];
  }
  const x = new Array<number>(f).fill(0);
  for (let i = f - 1; i >= 0; i--) x[i] = (b[i] - A[i].reduce((s, a, j) => (j > i ? s + a * x[j] : s), 0)) / A[i][i];
  return x;
}

const rowsOf = (F: Float32Array, f: number) => Array.from({ length: F.length / f }, (_, i) => [...F.subarray(i * f, (i + 1) * f)]);

test("with as many CG steps as factors, each half-iteration is the exact least-squares solve", async () => {
  const X = randomLikes(random(2), 30, 20, 0.2);
  const X_train = csrFromDense(X);
  const one = await fitAls(X_train, { ...options, cgSteps: 5 });
  const two = await fitAls(X_train, { ...options, iterations: 2, cgSteps: 5 });
  // iteration 2 solves users from iteration 1's movies, then movies from those users
  const movies1 = rowsOf(one.movies, 5), users2 = rowsOf(two.users, 5), movies2 = rowsOf(two.movies, 5);
  X.forEach((row, u) => {
    const expected = exactRow(movies1, row.flatMap((v, m) => (v ? [m] : [])), 0.1, 4);
    expected.forEach((v, a) => assert.ok(Math.abs(users2[u][a] - v) < 1e-5, `user ${u} factor ${a}: ${users2[u][a]} vs ${v}`));
  });
  X[0].forEach((_, m) => {
    const expected = exactRow(users2, X.flatMap((row, u) => (row[m] ? [u] : [])), 0.1, 4);
    expected.forEach((v, a) => assert.ok(Math.abs(movies2[m][a] - v) < 1e-5, `movie ${m} factor ${a}`));
  });
  // movie 0 has no likes: its factors are 0
  assert.deepEqual(movies2[0], [0, 0, 0, 0, 0]);
});

test("the fit is the same for a given seed, on any thread count, and differs with the seed", async () => {
  const X_train = csrFromDense(randomLikes(random(4), 80, 40, 0.15));
  const fit = (o: Partial<typeof options> & { threads?: number }) => fitAls(X_train, { ...options, iterations: 3, ...o });
  const one = await fit({ threads: 1 });
  assert.deepEqual(await fit({ threads: 3 }), one);
  assert.notDeepEqual(await fit({ seed: 4 }), one);
});

test("ALS learns the block structure of the likes: unseen movies of a user's block rank first", async () => {
  // two groups of users, each liking its own half of the movies; user 0 has not yet seen movies 1 and 2
  const X = Array.from({ length: 40 }, (_, u) => Array.from({ length: 12 }, (_, m) => ((u < 20) === (m < 6) ? 1 : 0)));
  X[0][1] = X[0][2] = 0;
  const model = await fitAls(csrFromDense(X), { factors: 4, regularization: 0.1, confidence: 10, iterations: 10, seed: 1 });
  const candidates = Int32Array.from({ length: 12 }, (_, m) => m);
  const rated = [0, 3, 4, 5];
  const got = rankWithFactors(model, 0, candidates, rated, 3, newFactorScratch(12, 12));
  assert.deepEqual([...got.movies].slice(0, 2).sort(), [1, 2]);
  // a new user given as the same liked list gets the same two first (solved as recalculate_user)
  const x = userFactors(model, rated, 0.1, 10);
  assert.deepEqual([...rankWithFactors(model, x, candidates, rated, 2, newFactorScratch(12, 12)).movies].sort(), [1, 2]);
});

test("ranking equals a brute-force dot product, rated movies excluded, ties by movieId_enc; the blend mixes normalised scores", async () => {
  // factors chosen so that movies 1 and 3 tie for user 0
  const model: Factors = { factors: 2, users: Float32Array.from([1, 0.5, -1, 2]), movies: Float32Array.from([1, 1, 0.5, 1, 3, 0, 0.5, 1, -2, 0]) };
  const s = newFactorScratch(5, 5);
  const all = Int32Array.from([0, 1, 2, 3, 4]);
  // user 0: scores 1.5, 1, 3, 1, -2
  assert.deepEqual([...rankWithFactors(model, 0, all, [2], 4, s).movies], [0, 1, 3, 4]);
  assert.deepEqual([...rankWithFactors(model, 0, all, [2], 4, s).scores], [1.5, 1, 1, -2]);
  // candidates restrict the catalogue
  assert.deepEqual([...rankWithFactors(model, 0, Int32Array.from([3, 4]), [], 5, s).movies], [3, 4]);

  // blend with neighbours: history {2}; movie 2's neighbours 1 (0.5) and 4 (0.25)
  const neighbours = { indptr: Int32Array.from([0, 0, 0, 2, 2, 2]), indices: Int32Array.from([1, 4]), sims: Float32Array.from([0.5, 0.25]) };
  const blend = rankWithFactors(model, 0, all, [2], 4, s, { neighbours, history: [2], weight: 0.5 });
  // ALS / 2 (max |score| among 0, 1, 3, 4), neighbours / 0.5
  const expected = [[0, 0.5 * 1.5 / 2], [1, 0.5 + 0.5 * 1 / 2], [3, 0.5 * 1 / 2], [4, 0.5 * 0.5 + 0.5 * -2 / 2]];
  expected.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  assert.deepEqual([...blend.movies], expected.map((e) => e[0]));
  assert.deepEqual([...blend.scores], expected.map((e) => e[1]));
  assert.deepEqual([...s.nb], [0, 0, 0, 0, 0], "the neighbours' scratch is cleared");
  // weight 1 is ALS alone, weight 0 the neighbours' order (untouched movies at 0, by movieId_enc)
  assert.deepEqual([...rankWithFactors(model, 0, all, [2], 4, s, { neighbours, history: [2], weight: 1 }).movies], [0, 1, 3, 4]);
  assert.deepEqual([...rankWithFactors(model, 0, all, [2], 4, s, { neighbours, history: [2], weight: 0 }).movies], [1, 4, 0, 3]);
});

test("blending with real neighbours runs on a random matrix", async () => {
  const X = randomLikes(random(8), 60, 30, 0.2);
  const X_train = csrFromDense(X);
  const model = await fitAls(X_train, { ...options, iterations: 4 });
  const neighbours = await nearestNeighbours(normalizeRows(transpose(X_train)), 5);
  const history = X[3].flatMap((v, m) => (v ? [m] : []));
  const got = rankWithFactors(model, 3, Int32Array.from({ length: 30 }, (_, m) => m), history, 10, newFactorScratch(30, 30), { neighbours, history, weight: 0.3 });
  assert.equal(got.movies.length, 10);
  assert.ok(got.movies.every((m) => !history.includes(m)));
});

test("a trained ALS or blend model saves its movie factors, loads them back and serves users solved from their likes", async () => {
  const dir = writeRandomMovieLens(31);
  const params = { n: 5, factors: 3, regularization: 1, confidence: 5, iterations: 4, similarity: "rp3beta" as const, k: 10 };
  for (const model of ["als", "blend"] as const) {
    const trained = await train(dir, { ...params, model, weight: 0.6 }, { threads: 1 });
    const root = mkdtempSync(path.join(tmpdir(), "als-model-"));
    await saveModel(path.join(root, "m"), trained);
    const loaded = await loadModel(path.join(root, "m"));
    assert.deepEqual(loaded.als, trained.als);
    assert.equal(loaded.als!.movies.length, loaded.movies.movieId.length * 3);
    assert.equal(loaded.als!.weight, model === "blend" ? 0.6 : null);

    const liked = [loaded.movies.movieId[2], loaded.movies.movieId[5], loaded.movies.movieId[9]];
    const x = userFactors(loaded.als!, [2, 5, 9], 1, 5);
    const blend = model === "blend" ? { neighbours: loaded.neighbours, history: [2, 5, 9], weight: 0.6 } : undefined;
    const expected = rankWithFactors(loaded.als!, x, loaded.popular, [2, 5, 9], 5, newFactorScratch(loaded.movies.movieId.length, loaded.popular.length), blend);
    const got = recommendForMovies(loaded, liked, 5);
    assert.deepEqual(got.recommendations.map((r) => r.movieId), [...expected.movies].map((m) => loaded.movies.movieId[m]));
    assert.deepEqual(got.recommendations.map((r) => r.score), [...expected.scores]);
    // a known user is solved from their stored likes
    const user = loaded.users.userId[0];
    const { rated, liked: history } = historyOf(loaded, user);
    const mine = rankWithFactors(loaded.als!, userFactors(loaded.als!, history, 1, 5), loaded.popular, rated, 5,
      newFactorScratch(loaded.movies.movieId.length, loaded.popular.length), blend && { ...blend, history });
    assert.deepEqual(recommendForUser(loaded, user, 5).recommendations.map((r) => r.score), [...mine.scores]);

    // factors that do not fill movies x factors are refused, naming the file
    const file = path.join(root, "m", "model.json");
    const manifest = JSON.parse(readFileSync(file, "utf8"));
    manifest.params.factors = 4;
    writeFileSync(file, JSON.stringify(manifest));
    await assert.rejects(loadModel(path.join(root, "m")), /als\.movies\.bin: has length \d+, expected \d+ movies x 4 factors/);
  }
});
