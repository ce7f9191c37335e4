/** A brute-force, dense reading of the spec's steps 9 and 10, to check the fast code against. */
export interface DenseNeighbours {
  indices: number[][];
  sims: number[][];
}

/** Spec step 9 over a dense 0/1 users x movies matrix. */
export function denseNeighbours(X: number[][], k: number): DenseNeighbours {
  const nMovies = X[0].length;
  const likes = (m: number) => X.reduce((s, row) => s + row[m], 0);
  const indices: number[][] = [], sims: number[][] = [];
  for (let m = 0; m < nMovies; m++) {
    const scored: [number, number][] = [];
    for (let j = 0; j < nMovies; j++) {
      if (j === m || likes(m) === 0) continue;
      const c = X.reduce((s, row) => s + row[m] * row[j], 0);
      if (c > 0) scored.push([c / Math.sqrt(likes(m) * likes(j)), j]);
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
