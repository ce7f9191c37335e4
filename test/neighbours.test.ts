import { test } from "node:test";
import assert from "node:assert/strict";
import { csrFromDense, normalizeRows, transpose } from "../lib/csr";
import { nearestNeighbours, neighboursOf } from "../lib/neighbours";
import { random } from "../lib/synthetic";
import { denseNeighbours, randomLikes } from "./reference";

const X_moviesOf = (X: number[][]) => normalizeRows(transpose(csrFromDense(X)));

test("neighbours equal a brute-force dense computation on random matrices", async () => {
  const rand = random(1);
  for (const [nUsers, nMovies, density, k] of [[30, 20, 0.2, 5], [50, 40, 0.1, 100], [8, 12, 0.5, 3], [60, 25, 0.05, 1]]) {
    const X = randomLikes(rand, nUsers, nMovies, density);
    const expected = denseNeighbours(X, k);
    const got = await nearestNeighbours(X_moviesOf(X), k);
    for (let m = 0; m < nMovies; m++) {
      const { indices, sims } = neighboursOf(got, m);
      assert.deepEqual([...indices], expected.indices[m], `movie ${m} of ${nUsers}x${nMovies}, k=${k}`);
      assert.deepEqual([...sims], expected.sims[m], `sims of movie ${m}`);
    }
  }
});

test("tied sims order by movieId_enc; self is excluded by index", async () => {
  // Movies 0 and 2 are twins: each is the other's best neighbour, never its own.
  const X = [[1, 0, 1], [1, 1, 1], [0, 1, 0]];
  const nb = await nearestNeighbours(X_moviesOf(X), 2);
  assert.deepEqual([...neighboursOf(nb, 0).indices], [2, 1]);
  assert.deepEqual([...neighboursOf(nb, 2).indices], [0, 1]);
  // movie 1 ties with 0 and 2 (cosine 1/2): the lower index first
  assert.deepEqual([...neighboursOf(nb, 1).indices], [0, 2]);
  assert.deepEqual([...neighboursOf(nb, 1).sims], [0.5, 0.5]);
});

test("movies without likes or co-likes get no neighbours", async () => {
  const nb = await nearestNeighbours(X_moviesOf([[0, 1, 0], [0, 0, 1]]), 5);
  assert.deepEqual([...nb.indptr], [0, 0, 0, 0]);
});

test("the same neighbours, bit for bit, whatever the thread count", async () => {
  const rand = random(9);
  const X = randomLikes(rand, 400, 300, 0.08);
  const X_movies = X_moviesOf(X);
  const one = await nearestNeighbours(X_movies, 20, { threads: 1 });
  for (const threads of [2, 3]) assert.deepEqual(await nearestNeighbours(X_movies, 20, { threads }), one, `${threads} threads`);
  const expected = denseNeighbours(X, 20);
  assert.deepEqual([...neighboursOf(one, 7).indices], expected.indices[7]);
});
