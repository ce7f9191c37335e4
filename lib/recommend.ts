import { newFactorScratch, rankWithFactors, userFactors } from "./als";
import { genresOf } from "./features";
import { instantiate, type Kernel, kernelModule, sharedMemory } from "./kernel";
import type { Model } from "./model-io";
import type { Neighbours } from "./neighbours";
import { indexOf } from "./split";
import { listSome } from "./text";
import { topK } from "./topk";

/** Movies (by movieId_enc) best first with their scores; fallback says the popular list stood in. */
export interface Ranking {
  movies: Int32Array;
  scores: Float64Array;
  fallback: null | "popular";
}

/** Scratch space for ranking among a catalogue's movies. */
export interface Scratch {
  /** all zero between calls */
  score: Float64Array;
  excluded: Int32Array;
  touched: Int32Array;
  candidates: Int32Array;
  values: Float64Array;
  stamp: number;
}

/** Scratch for nMovies movies. */
function newScratch(nMovies: number): Scratch {
  return { score: new Float64Array(nMovies), excluded: new Int32Array(nMovies), touched: new Int32Array(nMovies), candidates: new Int32Array(nMovies), values: new Float64Array(nMovies), stamp: 0 };
}

const scratches = new WeakMap<Neighbours, Scratch>();

function scratchFor(neighbours: Neighbours): Scratch {
  let s = scratches.get(neighbours);
  if (!s) {
    s = newScratch(neighbours.indptr.length - 1);
    scratches.set(neighbours, s);
  }
  return s;
}

/** Adds the history's neighbour lists into s.score, listing in s.touched the movies first scored; returns how many. */
function accumulateScores(neighbours: Neighbours, history: ArrayLike<number>, s: Scratch): number {
  const { indptr, indices, sims } = neighbours;
  const { score, touched } = s;
  let nTouched = 0;
  for (let h = 0; h < history.length; h++) {
    const m = history[h];
    for (let p = indptr[m]; p < indptr[m + 1]; p++) {
      const j = indices[p], v = score[j];
      score[j] = v + sims[p];
      touched[nTouched] = j;
      nTouched += v === 0 ? 1 : 0; // sims are > 0: a zero score is a first touch
    }
  }
  return nTouched;
}

/**
 * Each movie's neighbours as (index, sim) pairs in `pairs` (a kernel memory), movie m's between the addresses
 * ranges[2m] and ranges[2m + 1], as the kernel's rankUser reads them. The lists of the most-liked movies come
 * first (`popular`): the lists read most often then share the cache.
 */
export function placeNeighbours(neighbours: Neighbours, popular: Int32Array, ranges: Int32Array, pairs: Int32Array): void {
  placeRanges(neighbours, popular, ranges, pairs);
  copyPairs(neighbours, ranges, pairs, 0, neighbours.indptr.length - 1);
}

/** placeNeighbours's layout: each movie's range in `pairs`, the lists of the most-liked movies first. */
export function placeRanges(neighbours: Neighbours, popular: Int32Array, ranges: Int32Array, pairs: Int32Array): void {
  const nMovies = neighbours.indptr.length - 1;
  const listed = new Uint8Array(nMovies);
  let q = pairs.byteOffset;
  const place = (m: number) => {
    listed[m] = 1;
    ranges[2 * m] = q;
    q += 8 * (neighbours.indptr[m + 1] - neighbours.indptr[m]);
    ranges[2 * m + 1] = q;
  };
  popular.forEach(place);
  for (let m = 0; m < nMovies; m++) if (!listed[m]) place(m);
}

/** placeNeighbours's copy of the lists of movies lo..hi - 1 into their ranges (evaluation threads copy a share each). */
export function copyPairs(neighbours: Neighbours, ranges: Int32Array, pairs: Int32Array, lo: number, hi: number): void {
  const sims = new Float32Array(pairs.buffer, pairs.byteOffset, pairs.length);
  for (let m = lo; m < hi; m++) {
    for (let p = neighbours.indptr[m], q = (ranges[2 * m] - pairs.byteOffset) >> 2; p < neighbours.indptr[m + 1]; p++, q += 2) {
      pairs[q] = neighbours.indices[p];
      sims[q + 1] = neighbours.sims[p];
    }
  }
}

/** The kernel and its memory when rankFromHistory runs in it for a model's neighbours (rankInKernel). */
interface KernelRanking {
  kernel: Kernel;
  ranges: Int32Array;
  history: Int32Array;
  rated: Int32Array;
  score: Float64Array;
  touched: Int32Array;
  topIds: Int32Array;
  topScores: Float64Array;
}

const kernelRankings = new WeakMap<Neighbours, KernelRanking>();

/** Makes rankFromHistory rank in the WebAssembly kernel for these neighbours from now on, with the same results (the server's hot path). */
export async function rankInKernel(neighbours: Neighbours, popular: Int32Array): Promise<void> {
  const nMovies = neighbours.indptr.length - 1;
  const { memory, common } = sharedMemory({
    ranges: ["i32", 2 * nMovies], pairs: ["i32", 2 * neighbours.indices.length], history: ["i32", nMovies], rated: ["i32", nMovies],
    score: ["f64", nMovies], touched: ["i32", nMovies], topIds: ["i32", nMovies], topScores: ["f64", nMovies],
  }, {}, 0, "the model's neighbours");
  placeNeighbours(neighbours, popular, common.ranges, common.pairs);
  kernelRankings.set(neighbours, { kernel: instantiate(await kernelModule(), memory), ...common });
}

/**
 * Spec step 10: score(j) = sum of sim(m, j) over m in `history` (ascending movieId_enc), in double,
 * movies in `rated` excluded, top n by score then movieId_enc. An empty history gets `popular`.
 */
export function rankFromHistory(
  neighbours: Neighbours, popular: Int32Array, history: ArrayLike<number>, rated: ArrayLike<number>, n: number,
): Ranking {
  const k = kernelRankings.get(neighbours);
  // (lists longer than the catalogue, which repeat movies, take the script's path)
  if (k && history.length > 0 && n >= 1 && history.length <= k.history.length && rated.length <= k.rated.length) {
    k.history.set(history);
    k.rated.set(rated);
    const h = k.history.byteOffset, r = k.rated.byteOffset;
    const got = k.kernel.rankUser(h, h + 4 * history.length, r, r + 4 * rated.length, k.ranges.byteOffset, k.score.length, k.score.byteOffset, k.touched.byteOffset,
      Math.min(n, k.topIds.length), k.topIds.byteOffset, k.topScores.byteOffset);
    return { movies: k.topIds.slice(0, got), scores: k.topScores.slice(0, got), fallback: null };
  }
  const s = scratchFor(neighbours);
  const stamp = ++s.stamp;
  for (let i = 0; i < rated.length; i++) s.excluded[rated[i]] = stamp;
  if (history.length === 0) return { ...rankPopular(popular, s.excluded, stamp, n), fallback: "popular" };
  const { score, excluded, touched, candidates, values } = s;
  const nTouched = accumulateScores(neighbours, history, s);
  let nCandidates = 0;
  for (let t = 0; t < nTouched; t++) {
    const j = touched[t];
    if (excluded[j] !== stamp) {
      candidates[nCandidates] = j;
      values[nCandidates++] = score[j];
    }
    score[j] = 0;
  }
  const movies = new Int32Array(n), scores = new Float64Array(n);
  const got = topK(candidates, values, nCandidates, n, movies, scores);
  return { movies: movies.slice(0, got), scores: scores.slice(0, got), fallback: null };
}

/**
 * The popularity baseline (spec, "Popularity baseline") and the empty-history fallback: the n most-liked movies
 * whose excluded[m] is not `mark`, written to out; returns how many.
 */
export function popularInto(popular: Int32Array, excluded: Int32Array, mark: number, n: number, out: Int32Array): number {
  let got = 0;
  for (let i = 0; i < popular.length && got < n; i++) if (excluded[popular[i]] !== mark) out[got++] = popular[i];
  return got;
}

function rankPopular(popular: Int32Array, excluded: Int32Array, stamp: number, n: number): Omit<Ranking, "fallback"> {
  const movies = new Int32Array(n), got = popularInto(popular, excluded, stamp, n, movies);
  return { movies: movies.slice(0, got), scores: new Float64Array(got) };
}

/** Movies by train likes descending, ties by movieId_enc; only movies with a like. */
export function popularOrder(likes: Int32Array): Int32Array {
  const order = Array.from(likes.keys()).filter((m) => likes[m] > 0);
  order.sort((a, b) => likes[b] - likes[a] || a - b);
  return Int32Array.from(order);
}

/** What answering needs of a model: all but its manifest. */
type Served = Omit<Model, "manifest">;

/** A recommended movie as the CLI and the server show it. */
export interface Recommendation {
  movieId: number;
  title: string;
  genres: string[];
  score: number;
}

export class UnknownIdError extends Error {
  override name = "UnknownIdError";
  constructor(readonly kind: "userId" | "movieId", readonly ids: number[]) {
    super(`unknown ${kind}${ids.length > 1 ? "s" : ""}: ${listSome(ids)}`);
  }
}

function describe(model: Served, ranking: Ranking): { recommendations: Recommendation[]; fallback: null | "popular" } {
  const { movies } = model;
  const recommendations = Array.from(ranking.movies, (m, i) => ({
    movieId: movies.movieId[m],
    title: movies.title[m],
    genres: genresOf(movies.genres[m]),
    score: ranking.fallback ? movies.likes[m] : ranking.scores[i],
  }));
  return { recommendations, fallback: ranking.fallback };
}

/** A user's stored ratings and likes (all of them in a refit model, spec step 13), by movieId_enc ascending. */
export function historyOf(model: Served, userId: number): { rated: Int32Array; liked: Int32Array } {
  const u = indexOf(model.users.userId, userId);
  if (u < 0) throw new UnknownIdError("userId", [userId]);
  const { indptr, indices, liked } = model.users;
  const rated = indices.subarray(indptr[u], indptr[u + 1]);
  return { rated, liked: rated.filter((_, i) => liked[indptr[u] + i] === 1) };
}

/**
 * Recommendations for a known user (spec step 10 over their stored history), who may just have liked
 * `likedNow` too: those join the history, and every movie rated or liked is excluded.
 */
export function recommendForUser(model: Served, userId: number, n: number, likedNow: number[] = []) {
  const { rated, liked } = historyOf(model, userId);
  const now = movieEncs(model, likedNow);
  const history = now.length ? union(liked, now) : liked;
  return describe(model, rank(model, history, now.length ? union(rated, now) : rated, n));
}

/**
 * The model's ranking for a liked history (ascending), `rated` excluded: spec step 10, or with ALS the
 * user's factors solved from the history (as implicit's recalculate_user) and ranked among the movies
 * with a like, alone or blended with the neighbours. An empty history gets the popular movies.
 */
function rank(model: Served, history: Int32Array, rated: ArrayLike<number>, n: number): Ranking {
  const { als } = model;
  if (!als || history.length === 0) return rankFromHistory(model.neighbours, model.popular, history, rated, n);
  const x = userFactors(als, history, als.regularization, als.confidence);
  const blend = als.weight === null ? undefined : { neighbours: model.neighbours, history, weight: als.weight };
  const scratch = newFactorScratch(model.movies.movieId.length, model.popular.length);
  return { ...rankWithFactors(als, x, model.popular, rated, n, scratch, blend), fallback: null };
}

/** Recommendations for someone who liked `movieIds` (a user the model has not seen); those are excluded. */
export function recommendForMovies(model: Served, movieIds: number[], n: number) {
  const history = union(movieEncs(model, movieIds));
  return describe(model, rank(model, history, history, n));
}

/** movieId_enc of each id; unknown ids throw, all of them named. */
function movieEncs(model: Served, movieIds: number[]): Int32Array {
  const encs = Int32Array.from(movieIds, (id) => indexOf(model.movies.movieId, id));
  const unknown = movieIds.filter((_, i) => encs[i] < 0);
  if (unknown.length > 0) throw new UnknownIdError("movieId", unknown);
  return encs;
}

/** Distinct movies of the lists, ascending (the order spec step 10 sums in). */
const union = (...lists: ArrayLike<number>[]) => Int32Array.from(new Set(lists.flatMap((l) => Array.from(l)))).sort();

/** A movie's stored neighbours (spec step 11), the first n. */
export function similarTo(model: Served, movieId: number, n: number) {
  const m = movieEncs(model, [movieId])[0];
  const { indptr, indices, sims } = model.neighbours;
  const end = Math.min(indptr[m + 1], indptr[m] + n);
  return describe(model, { movies: indices.slice(indptr[m], end), scores: Float64Array.from(sims.subarray(indptr[m], end)), fallback: null });
}
