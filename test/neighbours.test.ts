import { test } from "node:test";
import assert from "node:assert/strict";
import { csrFromDense, normalizeRows, transpose } from "../lib/csr";
import { nearestNeighbours, neighboursOf } from "../lib/neighbours";
import { random } from "../lib/synthetic";
import { denseNeighbours, randomLikes } from "./reference";

const X_moviesOf = (X: number[][]) => normalizeRows(transpose(csrFromDense(X)));

test("neighbours equal a brute-force dense computation on random matrices", () => {
  const rand = random(1);
  for (const [nUsers, nMovies, density, k] of [[30, 20, 0.2, 5], [50, 40, 0.1, 100], [8, 12, 0.5, 3], [60, 25, 0.05, 1]]) {
    const X = randomLikes(rand, nUsers, nMovies, density);
    const expected = denseNeighbours(X, k);
    const got = nearestNeighbours(X_moviesOf(X), k);
    for (let m = 0; m < nMovies; m++) {
      const { indices, sims } = neighboursOf(got, m);
      assert.deepEqual([...indices], expected.indices[m], `movie ${m} of ${nUsers}x${nMovies}, k=${k}`);
      assert.deepEqual([...sims], expected.sims[m], `sims of movie ${m}`);
    }
  }
});

test("tied sims order by movieId_enc; self is excluded by index", () => {
  // Movies 0 and 2 are twins: each is the other's best neighbour, never its own.
  const X = [[1, 0, 1], [1, 1, 1], [0, 1, 0]];
  const nb = nearestNeighbours(X_moviesOf(X), 2);
  assert.deepEqual([...neighboursOf(nb, 0).indices], [2, 1]);
  assert.deepEqual([...neighboursOf(nb, 2).indices], [0, 1]);
  // movie 1 ties with 0 and 2 (cosine 1/2): the lower index first
  assert.deepEqual([...neighboursOf(nb, 1).indices], [0, 2]);
  assert.deepEqual([...neighboursOf(nb, 1).sims], [0.5, 0.5]);
});

test("movies without likes or co-likes get no neighbours", () => {
  const nb = nearestNeighbours(X_moviesOf([[0, 1, 0], [0, 0, 1]]), 5);
  assert.deepEqual([...nb.indptr], [0, 0, 0, 0]);
});
