import { type Csr, transpose } from "../lib/csr";
import type { Neighbours } from "../lib/neighbours";
import { topK } from "../lib/topk";

/**
 * The plain single-threaded neighbours of spec step 9, for the benchmark to compare with: for each
 * movie, count co-likes with every other movie through its users, then take the top k. `movies`
 * limits it to some movies (the others get none).
 */
export function plainNeighbours(X_movies: Csr, k: number, movies: Iterable<number>): Neighbours {
  const nMovies = X_movies.nRows;
  const X_users = transpose(X_movies);
  const co = new Int32Array(nMovies), touched = new Int32Array(nMovies);
  const candidates = new Int32Array(nMovies), cosines = new Float64Array(nMovies);
  const bestIds = new Int32Array(k), bestSims = new Float64Array(k);
  const lists = new Map<number, [Int32Array, Float32Array]>();
  for (const m of movies) {
    const nm = X_movies.indptr[m + 1] - X_movies.indptr[m];
    let nTouched = 0;
    for (let p = X_movies.indptr[m]; p < X_movies.indptr[m + 1]; p++) {
      const u = X_movies.indices[p];
      for (let q = X_users.indptr[u]; q < X_users.indptr[u + 1]; q++) {
        const j = X_users.indices[q];
        if (co[j]++ === 0) touched[nTouched++] = j;
      }
    }
    let nCandidates = 0;
    for (let t = 0; t < nTouched; t++) {
      const j = touched[t];
      if (j !== m) {
        candidates[nCandidates] = j;
        cosines[nCandidates++] = co[j] / Math.sqrt(nm * (X_movies.indptr[j + 1] - X_movies.indptr[j]));
      }
      co[j] = 0;
    }
    const got = topK(candidates, cosines, nCandidates, k, bestIds, bestSims);
    lists.set(m, [bestIds.slice(0, got), Float32Array.from(bestSims.subarray(0, got))]);
  }
  const indptr = new Int32Array(nMovies + 1);
  for (let m = 0; m < nMovies; m++) indptr[m + 1] = indptr[m] + (lists.get(m)?.[0].length ?? 0);
  const indices = new Int32Array(indptr[nMovies]), sims = new Float32Array(indptr[nMovies]);
  for (const [m, [ids, s]] of lists) {
    indices.set(ids, indptr[m]);
    sims.set(s, indptr[m]);
  }
  return { indptr, indices, sims };
}
