import { type Csr, transpose } from "./csr";
import { topK } from "./topk";

/** Each movie's neighbours (spec step 9): movie m's are indices/sims[indptr[m]..indptr[m+1]], best first. */
export interface Neighbours {
  indptr: Int32Array;
  indices: Int32Array;
  sims: Float32Array;
}

export const neighboursOf = (nb: Neighbours, m: number) => ({
  indices: nb.indices.subarray(nb.indptr[m], nb.indptr[m + 1]),
  sims: nb.sims.subarray(nb.indptr[m], nb.indptr[m + 1]),
});

/**
 * Top-k cosine neighbours of each movie, cosine > 0 only, ties by movieId_enc (spec step 9).
 * X_movies is movies x users; cosine(m, j) = c / sqrt(n_m * n_j) from the co-like count c,
 * computed in double and stored as float32.
 */
export function nearestNeighbours(X_movies: Csr, k: number): Neighbours {
  const X_users = transpose(X_movies);
  const part = neighboursOfRange(X_movies, X_users, k, 0, X_movies.nRows);
  return { indptr: part.indptr, indices: part.indices, sims: part.sims };
}

/** The neighbours of movies lo..hi-1; indptr starts at 0 for movie lo. */
export function neighboursOfRange(X_movies: Csr, X_users: Csr, k: number, lo: number, hi: number): Neighbours {
  const nMovies = X_movies.nRows;
  const { indptr: mPtr, indices: mIdx } = X_movies;
  const { indptr: uPtr, indices: uIdx } = X_users;
  const co = new Int32Array(nMovies);
  const touched = new Int32Array(nMovies);
  const candidates = new Int32Array(nMovies);
  const cosines = new Float64Array(nMovies);
  const bestIds = new Int32Array(k), bestSims = new Float64Array(k), heap = new Int32Array(k);
  const indptr = new Int32Array(hi - lo + 1);
  let indices = new Int32Array(Math.min((hi - lo) * k, 1 << 20));
  let sims = new Float32Array(indices.length);
  let stored = 0;
  for (let m = lo; m < hi; m++) {
    const nm = mPtr[m + 1] - mPtr[m];
    let nTouched = 0;
    for (let p = mPtr[m]; p < mPtr[m + 1]; p++) {
      const u = mIdx[p];
      for (let q = uPtr[u]; q < uPtr[u + 1]; q++) {
        const j = uIdx[q];
        if (co[j]++ === 0) touched[nTouched++] = j;
      }
    }
    let nCandidates = 0;
    for (let t = 0; t < nTouched; t++) {
      const j = touched[t];
      if (j !== m) {
        candidates[nCandidates] = j;
        cosines[nCandidates++] = co[j] / Math.sqrt(nm * (mPtr[j + 1] - mPtr[j]));
      }
      co[j] = 0;
    }
    const got = topK(candidates, cosines, nCandidates, k, bestIds, bestSims, heap);
    if (stored + got > indices.length) {
      const grown = Math.min(Math.max(2 * indices.length, stored + got), (hi - lo) * k);
      const i2 = new Int32Array(grown), s2 = new Float32Array(grown);
      i2.set(indices); s2.set(sims);
      indices = i2; sims = s2;
    }
    for (let t = 0; t < got; t++) {
      indices[stored] = bestIds[t];
      sims[stored++] = bestSims[t];
    }
    indptr[m - lo + 1] = stored;
  }
  return { indptr, indices: indices.slice(0, stored), sims: sims.slice(0, stored) };
}
