import { csrFromEntries, normalizeRows, transpose } from "./csr";
import { evaluateRanking, evaluationUsers } from "./evaluate";
import { mergeRatings, oneHotGenres } from "./features";
import { type Progress, readMovieLens } from "./ingest";
import type { Manifest, Model } from "./model-io";
import { nearestNeighbours } from "./neighbours";
import { type Params, resolveParams } from "./params";
import { popularOrder } from "./recommend";
import { encode, likedOf, sampleUsers, splitRatings } from "./split";
import { defaultThreads } from "./workers";

/** Told when a stage ends: its name, milliseconds and a one-line summary. */
export type StageReporter = (stage: string, ms: number, summary: string) => void;

export interface TrainOptions {
  onStage?: StageReporter;
  onProgress?: (stage: string) => Progress;
  /** Names the input in model.json (a directory, a preset, a Blob location). */
  source?: string;
  /** Worker threads for neighbours and evaluation; default: the cores available. */
  threads?: number;
}

export type TrainedModel = Omit<Model, "manifest"> & { manifest: Omit<Manifest, "arrays" | "format"> };

const fmt = (x: number) => x.toLocaleString("en-US");

/** Runs every step of the spec on a MovieLens directory: ingest to evaluated model. */
export async function train(dir: string, options: Partial<Params> = {}, { onStage, onProgress, source = dir, threads }: TrainOptions = {}): Promise<TrainedModel> {
  const params = resolveParams(options);
  const timings: Record<string, number> = {};
  const stage = async <T>(name: string, run: () => T | Promise<T>, summary: (r: T) => string): Promise<T> => {
    const t0 = performance.now();
    const result = await run();
    const ms = performance.now() - t0;
    timings[name] = Math.round(ms);
    onStage?.(name, ms, summary(result));
    return result;
  };

  const input = await stage("ingest", () => readMovieLens(dir, onProgress?.("ingest")),
    (r) => `${fmt(r.ratings.userId.length)} ratings, ${fmt(r.movies.movieId.length)} movies`);
  const { movies } = input;
  const genres = await stage("genres", () => oneHotGenres(movies), (g) => `${g.genres.length} genres one-hot`);
  const merged = await stage("merge", () => mergeRatings(input.ratings, movies),
    (r) => `${fmt(r.ratings.userId.length)} ratings kept, ${fmt(r.dropped)} dropped (movie not in movies.csv)`);
  const ratings = await stage("sample", () => sampleUsers(merged.ratings, params.sampleUsers, params.seed),
    (r) => (params.sampleUsers === undefined ? "all users" : `${fmt(r.userId.length)} ratings of ${fmt(params.sampleUsers)} sampled users`));
  const { liked, isTest } = await stage("split", () => ({
    liked: likedOf(ratings, params.likeThreshold),
    isTest: splitRatings(ratings, params.testFraction, params.seed),
  }), (r) => `${share(r.liked)} liked, ${share(r.isTest)} test`);
  const enc = await stage("encode", () => encode(ratings), (e) => `${fmt(e.userIds.length)} users, ${fmt(e.movieIds.length)} movies`);
  const nUsers = enc.userIds.length, nMovies = enc.movieIds.length;

  const { X_train, X_movies, X_test, trainRated } = await stage("csr", () => {
    const n = liked.length;
    const trainLike = new Uint8Array(n), testLike = new Uint8Array(n), train = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      train[i] = 1 - isTest[i];
      trainLike[i] = liked[i] & train[i];
      testLike[i] = liked[i] & isTest[i];
    }
    const X_train = csrFromEntries(enc.userEnc, enc.movieEnc, nUsers, nMovies, trainLike);
    return {
      X_train,
      X_movies: normalizeRows(transpose(X_train)),
      X_test: csrFromEntries(enc.userEnc, enc.movieEnc, nUsers, nMovies, testLike),
      trainRated: csrFromEntries(enc.userEnc, enc.movieEnc, nUsers, nMovies, train),
    };
  }, (r) => `X_train ${fmt(nUsers)} x ${fmt(nMovies)}, ${fmt(r.X_train.indices.length)} likes (density ${(r.X_train.indices.length / nUsers / nMovies).toExponential(2)})`);

  const neighbours = await stage("neighbours", () => nearestNeighbours(X_movies, params.k, { threads, onProgress: onProgress?.("neighbours") }),
    (nb) => `${fmt(nb.indices.length)} neighbours, k=${params.k}`);

  const likes = Int32Array.from({ length: nMovies }, (_, m) => X_movies.indptr[m + 1] - X_movies.indptr[m]);
  const popular = popularOrder(likes);
  const users = {
    userId: enc.userIds,
    indptr: trainRated.indptr,
    indices: trainRated.indices,
    liked: likedFlags(trainRated, X_train),
  };
  const { metrics, baseline } = await stage("evaluate", async () => {
    const evalUsers = evaluationUsers(X_train, X_test, enc.userIds, params.evalUsers, params.seed);
    const input = { neighbours, popular, X_train, trainRated, X_test };
    const threadCount = threads ?? defaultThreads();
    return {
      metrics: await evaluateRanking(input, evalUsers, params.n, "neighbours", threadCount),
      baseline: await evaluateRanking(input, evalUsers, params.n, "popularity", threadCount),
    };
  }, (r) => `${fmt(r.metrics.users)} users, precision@${params.n} ${r.metrics.precision.toFixed(4)} (popularity ${r.baseline.precision.toFixed(4)})`);

  const rowOf = new Map<number, number>();
  movies.movieId.forEach((id, row) => rowOf.set(id, row));
  return {
    manifest: {
      createdAt: new Date().toISOString(),
      params,
      input: { source, files: input.files },
      counts: {
        ratings: input.ratings.userId.length, movies: movies.movieId.length, genres: genres.genres.length,
        droppedRatings: merged.dropped, users: nUsers, encodedMovies: nMovies,
        trainLikes: X_train.indices.length, testLikes: X_test.indices.length, neighbours: neighbours.indices.length,
      },
      timings,
      metrics: { ...metrics },
      baseline: { ...baseline },
    },
    movies: {
      movieId: enc.movieIds,
      likes,
      title: Array.from(enc.movieIds, (id) => movies.title[rowOf.get(id)!]),
      genres: Array.from(enc.movieIds, (id) => movies.genres[rowOf.get(id)!]),
    },
    neighbours,
    users,
    popular,
  };
}

/** 1 where a train rating (row-sorted) is also a train like. */
function likedFlags(trainRated: { indptr: Int32Array; indices: Int32Array }, X_train: { indptr: Int32Array; indices: Int32Array }): Uint8Array {
  const flags = new Uint8Array(trainRated.indices.length);
  for (let u = 0; u + 1 < trainRated.indptr.length; u++) {
    let q = X_train.indptr[u];
    for (let p = trainRated.indptr[u]; p < trainRated.indptr[u + 1]; p++) {
      if (q < X_train.indptr[u + 1] && X_train.indices[q] === trainRated.indices[p]) {
        flags[p] = 1;
        q++;
      }
    }
  }
  return flags;
}

const share = (flags: Uint8Array) => {
  let s = 0;
  for (let i = 0; i < flags.length; i++) s += flags[i];
  return `${((100 * s) / Math.max(1, flags.length)).toFixed(1)}%`;
};

