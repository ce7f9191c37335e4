import path from "node:path";
import { type Factors, fitAls } from "./als";
import { type Csr, csrsOnThreads, normalizeRows } from "./csr";
import { evaluateRankings, evaluationUsers, type Metrics } from "./evaluate";
import { mergeRatings, oneHotGenres } from "./features";
import { type FileInfo, ingest, type Movies, MovieLensFormatError, type Progress } from "./ingest";
import type { Manifest, Model } from "./model-io";
import { type Neighbours, nearestNeighbours } from "./neighbours";
import { type Params, resolveParams, similarityParams } from "./params";
import { popularOrder } from "./recommend";
import { type Encoding, encodeAll, sampleUsers, splitAll } from "./split";
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
  /** Refit on all ratings for the saved model (spec step 13); false saves the evaluation model. Default true. */
  refit?: boolean;
}

/** A model to save (with `als`, the served fit's movie factors, when params.model is ALS or the blend). */
export type TrainedModel = Omit<Model, "manifest"> & { manifest: Omit<Manifest, "arrays" | "format"> };

/** Times stages into `timings` and reports them. */
export interface Run {
  stage: <T>(name: string, run: () => T | Promise<T>, summary: (r: T) => string) => Promise<T>;
  timings: Record<string, number>;
  threads: number;
  onProgress?: (stage: string) => Progress;
}

export function runOf({ onStage, onProgress, threads = defaultThreads() }: TrainOptions): Run {
  const timings: Record<string, number> = {};
  const stage = async <T>(name: string, run: () => T | Promise<T>, summary: (r: T) => string): Promise<T> => {
    const t0 = performance.now();
    const result = await run();
    const ms = performance.now() - t0;
    timings[name] = (timings[name] ?? 0) + Math.round(ms);
    onStage?.(name, ms, summary(result));
    return result;
  };
  return { stage, timings, threads, onProgress };
}

export const fmt = (x: number) => x.toLocaleString("en-US");

// The classes of a rating (liked + 2 * held out, as splitAll gives them) as mask bits, to pick the ratings of each matrix.
const KEPT_DISLIKE = 1 << 0, KEPT_LIKE = 1 << 1, HELD_DISLIKE = 1 << 2, HELD_LIKE = 1 << 3;

/**
 * The users x movies matrices of a split, from the ratings' classes (liked + 2 * held out), on `threads` threads: the
 * likes kept (to fit; with their transpose, movies x users) and held out (to score), the ratings kept, and with `all`
 * every like (with its transpose) and every rating (the refit's).
 */
export async function splitMatrices(userEnc: Int32Array, movieEnc: Int32Array, nUsers: number, nMovies: number, classes: Uint8Array, all: boolean, threads = 1, counted?: Int32Array | null) {
  const masks = [KEPT_LIKE, HELD_LIKE, KEPT_LIKE | KEPT_DISLIKE, ...(all ? [KEPT_LIKE | HELD_LIKE, KEPT_LIKE | KEPT_DISLIKE | HELD_LIKE | HELD_DISLIKE] : [])];
  const [[keptLikes, keptMovies], [heldLikes], [keptRated], [allLikes, allMovies] = [], [allRated] = []] =
    await csrsOnThreads(userEnc, movieEnc, nUsers, nMovies, classes, masks, [true, false, false, true, false], threads, counted);
  return { keptLikes, keptMovies: keptMovies!, heldLikes, keptRated, allLikes, allMovies, allRated };
}

/** The data after spec steps 1-8, and per rating what the split and the encoding made of it. */
export interface Prepared {
  files: FileInfo[];
  movies: Movies;
  counts: Record<string, number>;
  enc: Encoding;
  /** per rating: userId, movieId, liked, test */
  userId: Int32Array;
  movieId: Int32Array;
  liked: Uint8Array;
  isTest: Uint8Array;
  X_train: Csr;
  X_movies: Csr;
  X_test: Csr;
  trainRated: Csr;
  /** the refit's (spec step 13): all likes and all ratings, users x movies, and all likes movies x users */
  X_all: Csr;
  allRated: Csr;
  allMovies: Csr;
}

/**
 * Runs every step of the spec on a MovieLens directory: the evaluation on the split (steps 1-12), then
 * the refit on all ratings that the saved model serves (step 13), unless `refit` is false.
 */
export async function train(dir: string, options: Partial<Params> = {}, trainOptions: TrainOptions = {}): Promise<TrainedModel> {
  const params = resolveParams(options);
  const run = runOf(trainOptions);
  const data = await prepare(dir, params, run);
  const neighbours = await fitNeighbours(data.X_movies, params, run);
  const factors = params.model === "neighbours" ? undefined : await fitFactors(data.X_train, params, run);
  const { metrics, baseline } = await evaluateTest(data, neighbours, params, run, factors);
  const served = trainOptions.refit === false ? trainFit(data, neighbours) : await refit(data, params, run);
  const model = assemble(data, served, params, { evaluated: neighbours, metrics, baseline, timings: run.timings, source: trainOptions.source ?? dir });
  return withAls(model, params, served, factors, run);
}

/** Spec steps 1-8: ingest, genres, merge, sample, liked, split, encode, X_train and X_movies. */
export async function prepare(dir: string, params: Params, run: Run): Promise<Prepared> {
  const input = await run.stage("ingest", () => ingest(dir, { onProgress: run.onProgress?.("ingest"), threads: run.threads }),
    (r) => `${fmt(r.ratings.userId.length)} ratings, ${fmt(r.movies.movieId.length)} movies`);
  const { movies } = input;
  const genres = await run.stage("genres", () => oneHotGenres(movies), (g) => `${g.genres.length} genres one-hot`);
  const merged = await run.stage("merge", () => mergeRatings(input.ratings, movies),
    (r) => `${fmt(r.ratings.userId.length)} ratings kept, ${fmt(r.dropped)} dropped (movie not in movies.csv)`);
  const ratings = await run.stage("sample", () => sampleUsers(merged.ratings, params.sampleUsers, params.seed),
    (r) => (params.sampleUsers === undefined ? "all users" : `${fmt(r.userId.length)} ratings of ${fmt(params.sampleUsers)} sampled users`));
  const { liked, isTest, classes } = await run.stage("split", () => splitAll(ratings, params, run.threads), (r) => `${share(r.liked)} liked, ${share(r.isTest)} test`);
  const { perRow, ...enc } = await run.stage("encode", () => encodeAll(ratings, run.threads, classes), (e) => `${fmt(e.userIds.length)} users, ${fmt(e.movieIds.length)} movies`);
  const nUsers = enc.userIds.length, nMovies = enc.movieIds.length;
  const matrices = await run.stage("csr", async () => {
    const m = await splitMatrices(enc.userEnc, enc.movieEnc, nUsers, nMovies, classes, true, run.threads, perRow);
    return { X_train: m.keptLikes, X_movies: normalizeRows(m.keptMovies), X_test: m.heldLikes, trainRated: m.keptRated, X_all: m.allLikes!, allRated: m.allRated!, allMovies: m.allMovies! };
  }, (r) => `X_train ${fmt(nUsers)} x ${fmt(nMovies)}, ${fmt(r.X_train.indices.length)} likes (density ${(r.X_train.indices.length / nUsers / nMovies).toExponential(2)})`);
  if (matrices.X_train.indices.length === 0) throw new MovieLensFormatError(nothingToTrain(dir, input.ratings.userId.length, liked, params));
  return {
    files: await input.files, // hashed on a thread of its own meanwhile, while the stages above leave a core idle
    movies,
    counts: {
      ratings: input.ratings.userId.length, movies: movies.movieId.length, genres: genres.genres.length,
      droppedRatings: merged.dropped, users: nUsers, encodedMovies: nMovies,
      trainLikes: matrices.X_train.indices.length, testLikes: matrices.X_test.indices.length,
    },
    enc, userId: ratings.userId, movieId: ratings.movieId, liked, isTest,
    ...matrices,
  };
}

/** Spec step 9 with the chosen similarity, as a timed stage. */
export function fitNeighbours(X_movies: Csr, params: Params, run: Run, name = "neighbours"): Promise<Neighbours> {
  const { k, similarity, shrink, beta, alpha, asym, k1, b } = params;
  return run.stage(name, () => nearestNeighbours(X_movies, k, { similarity, shrink, beta, alpha, asym, k1, b, threads: run.threads, onProgress: run.onProgress?.(name) }),
    (nb) => `${fmt(nb.indices.length)} neighbours, ${[similarity, ...similarityParams(params)].join(" ")}, k=${k}`);
}

/** Implicit ALS on X_train with the params' factors, regularization, confidence and iterations, as a timed stage. */
export function fitFactors(X_train: Csr, params: Params, run: Run, name = "als"): Promise<Factors> {
  const { factors, regularization, confidence, iterations, seed } = params;
  return run.stage(name, () => fitAls(X_train, { factors, regularization, confidence, iterations, seed, threads: run.threads, onProgress: run.onProgress?.(name) }),
    () => `ALS factors=${factors} regularization=${regularization} confidence=${confidence} iterations=${iterations}`);
}

/**
 * The model with ALS's movie factors when params.model is ALS or the blend: the evaluation's on train,
 * or fitted again on the served fit's likes (all ratings).
 */
export async function withAls(model: TrainedModel, params: Params, served: Fit, factors: Factors | undefined, run: Run): Promise<TrainedModel> {
  if (params.model === "neighbours" || !factors) return model;
  const movies = served.fit === "all" ? (await fitFactors(served.likes, params, run, "refit als")).movies : factors.movies;
  const { regularization, confidence } = params;
  return { ...model, als: { factors: params.factors, movies, regularization, confidence, weight: params.model === "blend" ? params.weight : null } };
}

/** Spec step 12 on test, for the model (params.model: ALS and the blend need factors) and the popularity baseline, on the same users. */
export function evaluateTest(data: Prepared, neighbours: Neighbours, params: Params, run: Run, factors?: Factors): Promise<{ metrics: Metrics; baseline: Metrics }> {
  const { X_train, X_test, trainRated, enc } = data;
  return run.stage("evaluate", async () => {
    const users = evaluationUsers(X_train, X_test, enc.userIds, params.evalUsers, params.seed);
    const input = { neighbours, popular: popularOrder(likesOf(data.X_movies)), X_train, trainRated, X_test, factors, weight: params.weight };
    const [metrics, baseline] = await evaluateRankings(input, users, params.n, [params.model, "popularity"], run.threads);
    return { metrics, baseline };
  }, (r) => `${fmt(r.metrics.users)} users, precision@${params.n} ${r.metrics.precision.toFixed(4)} (popularity ${r.baseline.precision.toFixed(4)})`);
}

/** Likes per movie: the row lengths of X_movies. */
export const likesOf = (X_movies: Csr) => Int32Array.from({ length: X_movies.nRows }, (_, m) => X_movies.indptr[m + 1] - X_movies.indptr[m]);

/** What a saved model answers from: its likes (users x movies, and X_movies), each user's rated movies, the neighbours. */
export interface Fit {
  fit: "all" | "train";
  likes: Csr;
  X_movies: Csr;
  rated: Csr;
  neighbours: Neighbours;
}

/** The evaluation model as the one to save (`--no-refit`): train likes and train ratings. */
export const trainFit = (data: Prepared, neighbours: Neighbours): Fit =>
  ({ fit: "train", likes: data.X_train, X_movies: data.X_movies, rated: data.trainRated, neighbours });

/** Spec step 13: steps 7-9 again on all ratings of the sampled users (train and test), same encoding and parameters. */
export async function refit(data: Prepared, params: Params, run: Run): Promise<Fit> {
  const { X_all: likes, allRated: rated } = data;
  const X_movies = await run.stage("refit csr", () => normalizeRows(data.allMovies),
    () => `X_all ${fmt(likes.nRows)} x ${fmt(likes.nCols)}, ${fmt(likes.indices.length)} likes of ${fmt(rated.indices.length)} ratings`);
  return { fit: "all", likes, X_movies, rated, neighbours: await fitNeighbours(X_movies, params, run, "refit neighbours") };
}

/** The model to save: movie table, the served fit's neighbours and users' ratings, and the manifest with the evaluation. */
export function assemble(
  data: Prepared, served: Fit, params: Params,
  extra: { evaluated: Neighbours; metrics: Metrics; baseline: Metrics; timings: Record<string, number>; source: string } & Pick<Manifest, "tuning" | "validation">,
): TrainedModel {
  const { enc, movies } = data;
  const { likes: X, rated, neighbours } = served;
  const likes = likesOf(served.X_movies);
  const rowOf = new Map<number, number>();
  movies.movieId.forEach((id, row) => rowOf.set(id, row));
  return {
    manifest: {
      createdAt: new Date().toISOString(),
      fit: served.fit,
      params,
      input: { source: extra.source, files: data.files },
      counts: {
        ...data.counts,
        trainNeighbours: extra.evaluated.indices.length,
        ...(served.fit === "all" ? { allLikes: X.indices.length, allRatings: rated.indices.length, allNeighbours: neighbours.indices.length } : {}),
      },
      timings: extra.timings,
      metrics: { ...extra.metrics },
      baseline: { ...extra.baseline },
      ...(extra.tuning ? { tuning: extra.tuning } : {}),
      ...(extra.validation ? { validation: extra.validation } : {}),
    },
    movies: {
      movieId: enc.movieIds,
      likes,
      title: Array.from(enc.movieIds, (id) => movies.title[rowOf.get(id)!]),
      genres: Array.from(enc.movieIds, (id) => movies.genres[rowOf.get(id)!]),
    },
    neighbours,
    users: { userId: enc.userIds, indptr: rated.indptr, indices: rated.indices, liked: likedFlags(rated, X) },
    popular: popularOrder(likes),
  };
}

/** 1 where a rating (row-sorted) is also a like. */
function likedFlags(rated: Csr, X: Csr): Uint8Array {
  const { indptr, indices } = rated, { indptr: likePtr, indices: likes } = X; // locals: the loop reads no property
  const flags = new Uint8Array(indices.length);
  for (let u = 0; u < rated.nRows; u++) {
    const end = likePtr[u + 1];
    for (let p = indptr[u], q = likePtr[u]; p < indptr[u + 1] && q < end; p++) {
      const like = likes[q] === indices[p] ? 1 : 0;
      flags[p] = like;
      q += like;
    }
  }
  return flags;
}

/** Why the data gave no train likes: no rating of a listed movie, no like, or no like in train. */
function nothingToTrain(dir: string, read: number, liked: Uint8Array, { likeThreshold, testFraction }: Params): string {
  const likes = liked.reduce((a, b) => a + b, 0);
  if (liked.length === 0) return `${path.join(dir, "movies.csv")}: lists none of the movies in ratings.csv (all ${fmt(read)} ratings dropped at merge), nothing to train on`;
  if (likes === 0) return `${path.join(dir, "ratings.csv")}: no rating is a like (rating >= ${likeThreshold}) among the ${fmt(liked.length)} kept, nothing to train on`;
  return `${path.join(dir, "ratings.csv")}: none of the ${fmt(likes)} likes is in train (testFraction ${testFraction}), nothing to train on`;
}

const share = (flags: Uint8Array) => {
  let s = 0;
  for (let i = 0; i < flags.length; i++) s += flags[i];
  return `${((100 * s) / Math.max(1, flags.length)).toFixed(1)}%`;
};
