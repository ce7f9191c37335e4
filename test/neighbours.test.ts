import { test } from "node:test";
import assert from "node:assert/strict";
import { plainNeighbours } from "../bench/reference";
import { csrFromDense, csrFromEntries, normalizeRows, transpose } from "../lib/csr";
import { nearestNeighbours, neighboursOf, truncateNeighbours } from "../lib/neighbours";
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
  const rp3beta = await nearestNeighbours(X_movies, 20, { threads: 1, similarity: "rp3beta" });
  assert.deepEqual(await nearestNeighbours(X_movies, 20, { threads: 3, similarity: "rp3beta" }), rp3beta, "rp3beta on 3 threads");
  const expected = denseNeighbours(X, 20);
  assert.deepEqual([...neighboursOf(one, 7).indices], expected.indices[7]);
});

test("long rows (counted from bitsets, over 255 users a movie) give the brute-force neighbours", async () => {
  const X = randomLikes(random(5), 600, 200, 0.5);
  const expected = denseNeighbours(X, 20);
  for (const threads of [1, 2]) {
    const got = await nearestNeighbours(X_moviesOf(X), 20, { threads });
    for (let m = 0; m < 200; m++) assert.deepEqual([...neighboursOf(got, m).indices], expected.indices[m], `movie ${m} on ${threads} threads`);
  }
});

test("past 65,536 movies (rows in 16-bit bands) the neighbours equal the plain count's", async () => {
  // 70,000 movies, each liked by two of 20 users with long rows (bitsets), one of 200 with short rows and
  // some of 10 random users: the least popular band too is scanned, and has co-likes
  const rand = random(11), nMovies = 70_000, nUsers = 230, users: number[] = [], movies: number[] = [];
  for (let m = 0; m < nMovies; m++) {
    for (let u = 0; u < nUsers; u++) {
      if (u < 20 ? u === m % 20 || u === (3 * m + 1) % 20 : u < 220 ? u === 20 + (m % 200) : rand() < 0.05) users.push(u), movies.push(m);
    }
  }
  const X_movies = normalizeRows(csrFromEntries(Int32Array.from(movies), Int32Array.from(users), nMovies, nUsers));
  const sample = Array.from({ length: 700 }, (_, i) => i * 99);
  const expected = plainNeighbours(X_movies, 10, sample);
  const got = await nearestNeighbours(X_movies, 10, { threads: 2 });
  for (const m of sample) {
    assert.deepEqual([...neighboursOf(got, m).indices], [...neighboursOf(expected, m).indices], `movie ${m}`);
    assert.deepEqual([...neighboursOf(got, m).sims], [...neighboursOf(expected, m).sims], `sims of movie ${m}`);
  }
});

test("cosine with shrinkage and rp3beta equal the brute-force formulas of the spec", async () => {
  const rand = random(11);
  for (const [nUsers, nMovies, density, k] of [[40, 30, 0.15, 6], [25, 18, 0.3, 100]]) {
    const X = randomLikes(rand, nUsers, nMovies, density);
    for (const options of [{ shrink: 0 }, { shrink: 10 }, { beta: 0 }, { beta: 0.3 }, { beta: 0.75 }, { beta: 0.3, alpha: 0.5 }, { beta: 0.2, alpha: 1.7 }]) {
      const expected = denseNeighbours(X, k, options);
      const got = await nearestNeighbours(X_moviesOf(X), k, "beta" in options ? { similarity: "rp3beta", ...options } : { shrink: options.shrink });
      for (let m = 0; m < nMovies; m++) {
        assert.deepEqual([...neighboursOf(got, m).indices], expected.indices[m], `movie ${m}, ${JSON.stringify(options)}`);
        assert.deepEqual([...neighboursOf(got, m).sims], expected.sims[m], `sims of movie ${m}, ${JSON.stringify(options)}`);
      }
    }
  }
});

test("shrinkage reorders a movie's candidates: popular ones with more co-likes beat rare ones", async () => {
  // Popularity rises with the movie index, so the cosine's ranking and the shrunk weights' differ.
  for (let seed = 1; seed <= 5; seed++) {
    const rand = random(seed), nMovies = 120;
    const X = Array.from({ length: 200 }, () => Array.from({ length: nMovies }, (_, j) => (rand() < 0.02 + 0.5 * (j / nMovies) ** 2 ? 1 : 0)));
    for (const k of [3, 20]) {
      const expected = denseNeighbours(X, k, { shrink: 20 });
      const got = await nearestNeighbours(X_moviesOf(X), k, { shrink: 20 });
      for (let m = 0; m < nMovies; m++) assert.deepEqual([...neighboursOf(got, m).indices], expected.indices[m], `movie ${m}, seed ${seed}, k=${k}`);
    }
  }
});

test("rp3beta is not symmetric: popular neighbours are penalised", async () => {
  // movie 0 liked by 3 users, movie 1 by 1 of them
  const nb = await nearestNeighbours(X_moviesOf([[1, 1], [1, 0], [1, 0]]), 1, { similarity: "rp3beta", beta: 0.5 });
  // w(0 -> 1) = (1/3) * (1/2) / 1^0.5; w(1 -> 0) = (1/1) * (1/2) / 3^0.5
  assert.deepEqual([...nb.sims], [Math.fround(1 / 6), Math.fround(0.5 / Math.sqrt(3))]);
});

test("rp3beta's alpha raises the transition probabilities: alpha 1 is plain rp3beta, bit for bit", async () => {
  const X = randomLikes(random(5), 60, 40, 0.15);
  const plain = await nearestNeighbours(X_moviesOf(X), 10, { similarity: "rp3beta", beta: 0.4 });
  assert.deepEqual(await nearestNeighbours(X_moviesOf(X), 10, { similarity: "rp3beta", beta: 0.4, alpha: 1 }), plain);
  // movie 0 liked by 2 users, movie 1 by the first of them, who likes 2 movies:
  // w(0 -> 1) = (1/2)^a * (1/2)^a / 1^beta, w(1 -> 0) = (1/1)^a * (1/2)^a / 2^beta
  const nb = await nearestNeighbours(X_moviesOf([[1, 1], [1, 0]]), 1, { similarity: "rp3beta", beta: 0.5, alpha: 0.5 });
  assert.deepEqual([...nb.sims], [Math.fround(0.5 ** 0.5 * 0.5 ** 0.5), Math.fround(0.5 ** 0.5 / Math.sqrt(2))]);
  assert.notDeepEqual(await nearestNeighbours(X_moviesOf(X), 10, { similarity: "rp3beta", beta: 0.4, alpha: 0.6 }), plain);
});

test("truncateNeighbours keeps each list's first k", async () => {
  const X = randomLikes(random(4), 50, 30, 0.2);
  const long = await nearestNeighbours(X_moviesOf(X), 20);
  assert.deepEqual(truncateNeighbours(long, 7), await nearestNeighbours(X_moviesOf(X), 7));
});

/** Users who liked every movie but movie 0 (idf 0: they weigh nothing) and every movie (idf < 0, squared). */
const withHeavyUsers = (X: number[][]) => [...X, X[0].map((_, m) => (m === 0 ? 0 : 1)), X[0].map(() => 1)];

test("asym, tfidf and bm25 equal the brute-force formulas of docs/models.md, ties by movieId_enc, on two seeds", async () => {
  const settings = [
    { similarity: "asym", asym: 0 }, { similarity: "asym", asym: 0.2 }, { similarity: "asym", asym: 0.8, shrink: 10 }, { similarity: "asym", asym: 1 },
    { similarity: "tfidf", asym: 0.5 }, { similarity: "tfidf", asym: 0.3 }, { similarity: "tfidf", asym: 0.7, shrink: 5 },
    { similarity: "bm25", k1: 1.2, b: 0.75 }, { similarity: "bm25", k1: 100, b: 0.8 }, { similarity: "bm25", k1: 0, b: 0 },
  ] as const;
  let ties = 0;
  for (const seed of [11, 12]) {
    const rand = random(seed);
    for (const [nUsers, nMovies, density, k, heavy] of [[40, 30, 0.15, 6, false], [25, 18, 0.3, 100, false], [30, 20, 0.2, 4, true]] as const) {
      const X = randomLikes(rand, nUsers, nMovies, density);
      const A = heavy ? withHeavyUsers(X) : X;
      for (const options of settings) {
        const expected = denseNeighbours(A, k, options);
        const got = await nearestNeighbours(X_moviesOf(A), k, options);
        const what = `seed ${seed}, ${nUsers}x${nMovies}${heavy ? " with heavy users" : ""}, ${JSON.stringify(options)}`;
        for (let m = 0; m < nMovies; m++) {
          assert.deepEqual([...neighboursOf(got, m).indices], expected.indices[m], `movie ${m}, ${what}`);
          assert.deepEqual([...neighboursOf(got, m).sims], expected.sims[m], `sims of movie ${m}, ${what}`);
        }
        // randomLikes' last movie is movie 1's twin: a tie that every similarity breaks by movieId_enc
        const twins = expected.indices.filter((list) => list.includes(1) && list.includes(nMovies - 1));
        assert.ok(twins.every((list) => list.indexOf(1) < list.indexOf(nMovies - 1)), what);
        ties += twins.length;
      }
    }
  }
  assert.ok(ties > 100, `${ties} lists with the tie`);
});

test("asym 0.5 is the cosine bit for bit, with or without shrink, on any thread count", async () => {
  const X_movies = X_moviesOf(randomLikes(random(13), 300, 200, 0.08));
  for (const shrink of [0, 10]) {
    const cosine = await nearestNeighbours(X_movies, 20, { shrink, threads: 1 });
    for (const threads of [1, 3]) assert.deepEqual(await nearestNeighbours(X_movies, 20, { similarity: "asym", asym: 0.5, shrink, threads }), cosine, `shrink ${shrink}, ${threads} threads`);
  }
});

test("asym, tfidf and bm25: the same neighbours, bit for bit, whatever the thread count", async () => {
  const X_movies = X_moviesOf(withHeavyUsers(randomLikes(random(9), 400, 300, 0.08)));
  for (const options of [{ similarity: "asym", asym: 0.3 }, { similarity: "tfidf", asym: 0.6, shrink: 5 }, { similarity: "bm25" }] as const) {
    const one = await nearestNeighbours(X_movies, 20, { ...options, threads: 1 });
    assert.ok(one.indices.length > 0);
    for (const threads of [2, 3]) assert.deepEqual(await nearestNeighbours(X_movies, 20, { ...options, threads }), one, `${options.similarity}, ${threads} threads`);
  }
});

test("asym is not symmetric: a high asym penalises the popular movie's own list", async () => {
  // movie 0 liked by 3 users, movie 1 by 1 of them: w(0 -> 1) = 1 / (3^asym * 1^(1 - asym)), w(1 -> 0) = 1 / (1^asym * 3^(1 - asym))
  const nb = await nearestNeighbours(X_moviesOf([[1, 1], [1, 0], [1, 0]]), 1, { similarity: "asym", asym: 0.8 });
  assert.deepEqual([...nb.sims], [Math.fround(1 / Math.sqrt(Math.pow(3, 1.6))), Math.fround(1 / Math.sqrt(Math.pow(3, 2 * (1 - 0.8))))]);
  assert.ok(nb.sims[0] < nb.sims[1]);
});
