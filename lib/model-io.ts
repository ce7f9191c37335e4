import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { FileInfo } from "./ingest";
import type { Neighbours } from "./neighbours";
import type { Params } from "./params";
import { popularOrder } from "./recommend";

export const MODEL_FORMAT = 1;

/** Where commands write and read a model unless told otherwise. */
export const DEFAULT_MODEL_DIR = "models/latest";

/** model.json: what was trained, from what, how long it took and how well it does. */
export interface Manifest {
  format: number;
  createdAt: string;
  /** Which model is saved: refit on all ratings (served), or the evaluation model on train (`--no-refit`). */
  fit: "all" | "train";
  params: Params;
  input: { source: string; files: FileInfo[] };
  counts: Record<string, number>;
  timings: Record<string, number>;
  /** The evaluation on test (spec step 12), whichever fit is saved. */
  metrics: Record<string, number>;
  baseline?: Record<string, number>;
  /** The grid `tune` scored on the validation split, when the model came from it. */
  tuning?: Record<string, number | string>[];
  arrays: Record<string, { type: ArrayType; length: number }>;
}

type ArrayType = "int32" | "float32" | "uint8";

/** A trained model: the movie table, the neighbours and each user's ratings (all, or train's with fit "train"), all by *_enc. */
export interface Model {
  manifest: Manifest;
  movies: { movieId: Int32Array; title: string[]; genres: string[]; likes: Int32Array };
  neighbours: Neighbours;
  users: { userId: Int32Array; indptr: Int32Array; indices: Int32Array; liked: Uint8Array };
  /** Derived on load: movies by likes, for the popular fallback. */
  popular: Int32Array;
}

type Arrays = Record<string, Int32Array | Float32Array | Uint8Array>;

function arraysOf(model: Omit<Model, "manifest" | "popular">): Arrays {
  const title = encodeStrings(model.movies.title), genres = encodeStrings(model.movies.genres);
  return {
    "movies.movieId": model.movies.movieId,
    "movies.likes": model.movies.likes,
    "movies.title.offsets": title.offsets,
    "movies.title.bytes": title.bytes,
    "movies.genres.offsets": genres.offsets,
    "movies.genres.bytes": genres.bytes,
    "neighbours.indptr": model.neighbours.indptr,
    "neighbours.indices": model.neighbours.indices,
    "neighbours.sims": model.neighbours.sims,
    "users.userId": model.users.userId,
    "users.indptr": model.users.indptr,
    "users.indices": model.users.indices,
    "users.liked": model.users.liked,
  };
}

/**
 * Writes model.json and one .bin per array into a fresh directory beside `dir`, then swaps it in:
 * a crash leaves either the old model or the new one, never a mix.
 */
export async function saveModel(dir: string, model: Omit<Model, "manifest" | "popular"> & { manifest: Omit<Manifest, "arrays" | "format"> }): Promise<void> {
  const target = path.resolve(dir);
  const staging = `${target}.partial-${process.pid}`;
  const previous = `${target}.previous-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const arrays = arraysOf(model);
  const manifest: Manifest = { format: MODEL_FORMAT, ...model.manifest, arrays: {} };
  for (const [name, array] of Object.entries(arrays)) {
    manifest.arrays[name] = { type: typeOf(array), length: array.length };
    await writeFile(path.join(staging, `${name}.bin`), new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }
  await writeFile(path.join(staging, "model.json"), JSON.stringify(manifest, null, 2) + "\n");
  const hadOld = await rename(target, previous).then(() => true, (e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return false;
    throw e;
  });
  await rename(staging, target);
  if (hadOld) await rm(previous, { recursive: true, force: true });
}

export class ModelFormatError extends Error {
  override name = "ModelFormatError";
}

/** Reads a model written by saveModel, checking every array against model.json. */
export async function loadModel(dir: string): Promise<Model> {
  const manifestFile = path.join(dir, "model.json");
  const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as Manifest;
  if (manifest.format !== MODEL_FORMAT) {
    throw new ModelFormatError(`${manifestFile}: expected format ${MODEL_FORMAT}, got ${manifest.format}`);
  }
  const a: Arrays = {};
  for (const [name, { type, length }] of Object.entries(manifest.arrays)) {
    const file = path.join(dir, `${name}.bin`);
    const bytes = await readFile(file);
    const array = type === "int32" ? new Int32Array(length) : type === "float32" ? new Float32Array(length) : new Uint8Array(length);
    if (bytes.length !== array.byteLength) {
      throw new ModelFormatError(`${file}: expected ${array.byteLength} bytes (${length} ${type}), got ${bytes.length}`);
    }
    new Uint8Array(array.buffer).set(bytes);
    a[name] = array;
  }
  const movieId = a["movies.movieId"] as Int32Array;
  const likes = a["movies.likes"] as Int32Array;
  const model: Model = {
    manifest,
    movies: {
      movieId,
      likes,
      title: decodeStrings(a["movies.title.offsets"] as Int32Array, a["movies.title.bytes"] as Uint8Array),
      genres: decodeStrings(a["movies.genres.offsets"] as Int32Array, a["movies.genres.bytes"] as Uint8Array),
    },
    neighbours: {
      indptr: a["neighbours.indptr"] as Int32Array,
      indices: a["neighbours.indices"] as Int32Array,
      sims: a["neighbours.sims"] as Float32Array,
    },
    users: {
      userId: a["users.userId"] as Int32Array,
      indptr: a["users.indptr"] as Int32Array,
      indices: a["users.indices"] as Int32Array,
      liked: a["users.liked"] as Uint8Array,
    },
    popular: popularOrder(likes),
  };
  const nMovies = movieId.length, nUsers = model.users.userId.length;
  const checks: [string, number, number][] = [
    ["neighbours.indptr", model.neighbours.indptr.length, nMovies + 1],
    ["users.indptr", model.users.indptr.length, nUsers + 1],
    ["neighbours.sims", model.neighbours.sims.length, model.neighbours.indices.length],
    ["users.liked", model.users.liked.length, model.users.indices.length],
    ["movies.title", model.movies.title.length, nMovies],
  ];
  for (const [name, got, expected] of checks) {
    if (got !== expected) throw new ModelFormatError(`${dir}: ${name} has length ${got}, expected ${expected}`);
  }
  return model;
}

function typeOf(array: Int32Array | Float32Array | Uint8Array): ArrayType {
  return array instanceof Int32Array ? "int32" : array instanceof Float32Array ? "float32" : "uint8";
}

function encodeStrings(strings: string[]): { offsets: Int32Array; bytes: Uint8Array } {
  const parts = strings.map((s) => Buffer.from(s, "utf8"));
  const offsets = new Int32Array(strings.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i] + p.length));
  return { offsets, bytes: Buffer.concat(parts) };
}

function decodeStrings(offsets: Int32Array, bytes: Uint8Array): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: offsets.length - 1 }, (_, i) => buf.toString("utf8", offsets[i], offsets[i + 1]));
}
