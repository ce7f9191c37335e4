import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { SimilarityName } from "../lib/params";
import { random } from "../lib/synthetic";

/** A brute-force, dense reading of the spec's steps 9 and 10, to check the fast code against. */
export interface DenseNeighbours {
  indices: number[][];
  sims: number[][];
}

/** The similarity of denseNeighbours and its parameters; beta alone means rp3beta. */
export interface DenseSimilarity {
  similarity?: SimilarityName;
  shrink?: number;
  beta?: number;
  alpha?: number;
  asym?: number;
  k1?: number;
  b?: number;
}

/**
 * Spec step 9 over a dense 0/1 users x movies matrix: cosine with shrink, rp3beta (with alpha), or the
 * formulas of docs/models.md ("Neighbour similarities") for asym, tfidf and bm25.
 */
export function denseNeighbours(X: number[][], k: number, options: DenseSimilarity = {}): DenseNeighbours {
  const { shrink = 0, beta, alpha = 1, asym = 0.5, k1 = 1.2, b = 0.75, similarity = beta === undefined ? "cosine" : "rp3beta" } = options;
  const nMovies = X[0].length;
  const likes = (m: number) => X.reduce((s, row) => s + row[m], 0);
  const liked = (row: number[]) => row.reduce((a, b) => a + b, 0);
  // sums over users in ascending order, as the spec's double precision asks
  const idf = (row: number[]) => Math.log(nMovies) - Math.log1p(liked(row));
  const idf2 = (row: number[]) => idf(row) * idf(row);
  const userWeight = similarity === "asym" ? () => 1 : idf2;
  const norm2 = (m: number) => (similarity === "tfidf" ? X.reduce((s, row) => (row[m] ? s + idf2(row) : s), 0) : likes(m));
  const mean = X.reduce((s, row) => s + liked(row), 0) / nMovies;
  const bm25 = (m: number) => (k1 + 1) / (k1 * (1 - b + (b * likes(m)) / mean) + 1);
  const indices: number[][] = [], sims: number[][] = [];
  for (let m = 0; m < nMovies; m++) {
    const scored: [number, number][] = [];
    for (let j = 0; j < nMovies; j++) {
      if (j === m || likes(m) === 0) continue;
      const c = X.reduce((s, row) => s + row[m] * row[j], 0);
      // sum over users u who liked both of 1 / d_u, users ascending
      const walk = X.reduce((s, row) => (row[m] && row[j] ? s + Math.pow(1 / liked(row), alpha) : s), 0);
      const v = X.reduce((s, row) => (row[m] && row[j] ? s + userWeight(row) : s), 0);
      const w = similarity === "cosine" ? c / (Math.sqrt(likes(m) * likes(j)) + shrink)
        : similarity === "rp3beta" ? (Math.pow(1 / likes(m), alpha) * walk) / Math.pow(likes(j), beta!)
        : similarity === "bm25" ? bm25(m) * bm25(j) * v
        : v / (Math.sqrt(Math.pow(norm2(m), 2 * asym) * Math.pow(norm2(j), 2 * (1 - asym))) + shrink);
      if (c > 0 && w > 0) scored.push([w, j]);
    }
    scored.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    indices.push(scored.slice(0, k).map((s) => s[1]));
    sims.push(scored.slice(0, k).map((s) => Math.fround(s[0])));
  }
  return { indices, sims };
}

/** Spec step 10 for one user: top n of summed sims, rated movies excluded. */
export function denseRecommend(nb: DenseNeighbours, history: number[], rated: number[], n: number): number[] {
  const score = new Map<number, number>();
  for (const m of [...history].sort((a, b) => a - b)) {
    nb.indices[m].forEach((j, i) => score.set(j, (score.get(j) ?? 0) + nb.sims[m][i]));
  }
  return [...score].filter(([j]) => !rated.includes(j)).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, n).map(([j]) => j);
}

/** A random 0/1 matrix with some empty and some duplicated columns, so ties and movies without likes occur. */
export function randomLikes(rand: () => number, nUsers: number, nMovies: number, density: number): number[][] {
  const X = Array.from({ length: nUsers }, () => Array.from({ length: nMovies }, () => (rand() < density ? 1 : 0)));
  for (const row of X) {
    row[0] = 0; // a movie nobody liked
    row[nMovies - 1] = row[1]; // a twin of movie 1: cosine 1, a tie with anything else at 1
  }
  return X;
}

/** A small random MovieLens directory: sparse ids, a movie without ratings, a rating of an unknown movie. */
export function writeRandomMovieLens(seed: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), "train-"));
  const rand = random(seed);
  const movieIds = Array.from({ length: 30 }, (_, i) => 1 + i * 5 + (i % 4));
  writeFileSync(path.join(dir, "movies.csv"), "movieId,title,genres\n" + movieIds.map((id) => `${id},"Movie ${id}, The (1999)",Drama|Comedy`).join("\n") + "\n");
  const lines = ["userId,movieId,rating,timestamp"];
  for (let u = 1; u <= 80; u++) {
    for (const id of movieIds.slice(0, 29)) if (rand() < 0.3) lines.push(`${u * 7},${id},${(1 + Math.floor(rand() * 10)) / 2},1`);
    if (u === 5) lines.push(`${u * 7},999,4.0,1`);
  }
  writeFileSync(path.join(dir, "ratings.csv"), lines.join("\n") + "\n");
  return dir;
}

