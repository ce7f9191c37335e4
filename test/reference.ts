import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { random } from "../lib/synthetic";

/** A brute-force, dense reading of the spec's steps 9 and 10, to check the fast code against. */
export interface DenseNeighbours {
  indices: number[][];
  sims: number[][];
}

/** Spec step 9 over a dense 0/1 users x movies matrix; cosine with shrink, or rp3beta (with alpha) when beta is set. */
export function denseNeighbours(X: number[][], k: number, { shrink = 0, beta, alpha = 1 }: { shrink?: number; beta?: number; alpha?: number } = {}): DenseNeighbours {
  const nMovies = X[0].length;
  const likes = (m: number) => X.reduce((s, row) => s + row[m], 0);
  const indices: number[][] = [], sims: number[][] = [];
  for (let m = 0; m < nMovies; m++) {
    const scored: [number, number][] = [];
    for (let j = 0; j < nMovies; j++) {
      if (j === m || likes(m) === 0) continue;
      const c = X.reduce((s, row) => s + row[m] * row[j], 0);
      // sum over users u who liked both of 1 / d_u, users ascending
      const walk = X.reduce((s, row) => (row[m] && row[j] ? s + Math.pow(1 / row.reduce((a, b) => a + b, 0), alpha) : s), 0);
      const w = beta === undefined ? c / (Math.sqrt(likes(m) * likes(j)) + shrink) : (Math.pow(1 / likes(m), alpha) * walk) / Math.pow(likes(j), beta);
      if (c > 0) scored.push([w, j]);
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

