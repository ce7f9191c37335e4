import { createHash } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";
import { link, lstat, mkdir, open, readFile, readdir, readlink, realpath, rename, rm, rmdir, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import type { FileInfo } from "./ingest";
import type { Neighbours } from "./neighbours";
import type { ServedAls } from "./als";
import type { Params } from "./params";
import { popularOrder } from "./recommend";

/** 2: every array carries its SHA-256; the directory is published as a symlink into `<dir>.versions/`. */
export const MODEL_FORMAT = 3;

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
  /** With tuning: the share of train each validation split held out, and how many splits each row is the mean of. */
  validation?: { fraction: number; splits: number };
  arrays: Record<string, { type: ArrayType; length: number; sha256: string }>;
}

type ArrayType = "int32" | "float32" | "uint8";
type TypedArray = Int32Array | Float32Array | Uint8Array;

/** A trained model: the movie table, the neighbours and each user's ratings (all, or train's with fit "train"), all by *_enc. */
export interface Model {
  manifest: Manifest;
  movies: { movieId: Int32Array; title: string[]; genres: string[]; likes: Int32Array };
  neighbours: Neighbours;
  users: { userId: Int32Array; indptr: Int32Array; indices: Int32Array; liked: Uint8Array };
  /** ALS's movie factors when params.model is "als" or "blend" (array als.movies, empty otherwise) */
  als?: ServedAls;
  /** Derived on load: movies by likes, for the popular fallback. */
  popular: Int32Array;
}

export type SavedModel = Omit<Model, "manifest" | "popular"> & { manifest: Omit<Manifest, "arrays" | "format"> };

export class ModelFormatError extends Error {
  override name = "ModelFormatError";
}

/** The directory cannot be written: it is not ours to replace, or another process is writing it. */
export class ModelDirError extends Error {
  override name = "ModelDirError";
}

type Arrays = Record<string, TypedArray>;

/** Says what is wrong with array `x`, given the arrays checked before it (table order), or nothing. */
type Check = (x: TypedArray, a: Arrays) => string | undefined;

/**
 * Every array a model holds, in the order they are checked: its file is `<name>.bin`, never a name from
 * model.json. A new array is one row here and one line in arraysOf / modelOf.
 */
const ARRAYS: Record<string, { type: ArrayType; check: Check }> = {
  "movies.movieId": { type: "int32", check: increasing },
  "movies.likes": { type: "int32", check: (x, a) => lengthIs(x, nMovies(a)) ?? inRange(x, 0, 2 ** 31) },
  "movies.title.offsets": { type: "int32", check: (x, a) => lengthIs(x, nMovies(a) + 1) ?? offsets(x, a, "movies.title.bytes") },
  "movies.title.bytes": { type: "uint8", check: () => undefined },
  "movies.genres.offsets": { type: "int32", check: (x, a) => lengthIs(x, nMovies(a) + 1) ?? offsets(x, a, "movies.genres.bytes") },
  "movies.genres.bytes": { type: "uint8", check: () => undefined },
  "neighbours.indptr": { type: "int32", check: (x, a) => lengthIs(x, nMovies(a) + 1) ?? offsets(x, a, "neighbours.indices") },
  "neighbours.indices": { type: "int32", check: neighbourIndices },
  "neighbours.sims": { type: "float32", check: (x, a) => lengthIs(x, a["neighbours.indices"].length) ?? neighbourSims(x, a) },
  "users.userId": { type: "int32", check: increasing },
  "users.indptr": { type: "int32", check: (x, a) => lengthIs(x, a["users.userId"].length + 1) ?? offsets(x, a, "users.indices") },
  "users.indices": { type: "int32", check: userIndices },
  "users.liked": { type: "uint8", check: (x, a) => lengthIs(x, a["users.indices"].length) ?? bits(x as Uint8Array) },
  "als.movies": { type: "float32", check: (x, a) => (x.length % Math.max(1, nMovies(a)) === 0
    ? inRange(x, -Number.MAX_VALUE, Infinity) : `has length ${x.length}, not a multiple of the ${nMovies(a)} movies`) },
};
const nMovies = (a: Arrays) => a["movies.movieId"].length;

const lengthIs = (x: TypedArray, n: number) => (x.length === n ? undefined : `has length ${x.length}, expected ${n}`);

/** Every value in [from, to). */
function inRange(x: TypedArray, from: number, to: number): string | undefined {
  for (let i = 0; i < x.length; i++) if (!(x[i] >= from && x[i] < to)) return `value ${x[i]} at ${i} is not in [${from}, ${to})`;
  return undefined;
}

/** Every value 0 or 1 (inRange's answer; a loop of its own, on bytes alone, is fast). */
function bits(x: Uint8Array): string | undefined {
  let any = 0;
  for (let i = 0; i < x.length; i++) any |= x[i];
  return any > 1 ? inRange(x, 0, 2) : undefined;
}

function increasing(x: TypedArray): string | undefined {
  for (let i = 1; i < x.length; i++) if (!(x[i] > x[i - 1])) return `value ${x[i]} at ${i} is not above the one before`;
  return undefined;
}

/** Row pointers into array `into`: start at 0, never decrease, end at its length (strings' bytes decode later). */
function offsets(ptr: TypedArray, a: Arrays, into: string): string | undefined {
  if (ptr[0] !== 0) return `starts at ${ptr[0]}, expected 0`;
  for (let i = 1; i < ptr.length; i++) if (ptr[i] < ptr[i - 1]) return `decreases at ${i} (${ptr[i - 1]} then ${ptr[i]})`;
  const n = a[into].length;
  return ptr[ptr.length - 1] === n ? undefined : `ends at ${ptr[ptr.length - 1]}, expected ${into}'s length ${n}`;
}

function neighbourIndices(x: TypedArray, a: Arrays): string | undefined {
  const ptr = a["neighbours.indptr"], n = nMovies(a);
  for (let m = 0; m < n; m++) {
    for (let p = ptr[m]; p < ptr[m + 1]; p++) {
      if (!(x[p] >= 0 && x[p] < n && x[p] !== m)) return `movie ${m}'s neighbour ${x[p]} at ${p} is out of range or itself`;
    }
  }
  return undefined;
}

function neighbourSims(x: TypedArray, a: Arrays): string | undefined {
  const ptr = a["neighbours.indptr"];
  for (let m = 0; m + 1 < ptr.length; m++) {
    for (let p = ptr[m]; p < ptr[m + 1]; p++) {
      if (!(x[p] > 0 && x[p] < Infinity && (p === ptr[m] || x[p] <= x[p - 1]))) return `movie ${m}'s sim ${x[p]} at ${p} is not finite, > 0 and at most the one before`;
    }
  }
  return undefined;
}

function userIndices(x: TypedArray, a: Arrays): string | undefined {
  const ptr = a["users.indptr"] as Int32Array, n = nMovies(a), movies = x as Int32Array;
  for (let u = 0; u + 1 < ptr.length; u++) {
    for (let p = ptr[u], end = ptr[u + 1], last = -1; p < end; last = movies[p++]) {
      if (!(movies[p] > last && movies[p] < n)) return `user ${u}'s movie ${movies[p]} at ${p} is out of range or not after the one before`;
    }
  }
  return undefined;
}

/** Checks every array against the table, in order; `file` names an array's file in the message. */
function checkArrays(a: Arrays, file: (name: string) => string): void {
  for (const [name, { type, check }] of Object.entries(ARRAYS)) {
    if (typeOf(a[name]) !== type) throw new ModelFormatError(`${file(name)}: expected ${type}, got ${typeOf(a[name])}`);
    const problem = check(a[name], a);
    if (problem) throw new ModelFormatError(`${file(name)}: ${problem}`);
  }
}

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
    "als.movies": model.als?.movies ?? new Float32Array(0),
  };
}

function modelOf(manifest: Manifest, a: Arrays, file: (name: string) => string): Model {
  const likes = a["movies.likes"] as Int32Array;
  return {
    manifest,
    movies: {
      movieId: a["movies.movieId"] as Int32Array,
      likes,
      title: decodeStrings(a["movies.title.offsets"] as Int32Array, a["movies.title.bytes"] as Uint8Array, file("movies.title.bytes")),
      genres: decodeStrings(a["movies.genres.offsets"] as Int32Array, a["movies.genres.bytes"] as Uint8Array, file("movies.genres.bytes")),
    },
    neighbours: { indptr: a["neighbours.indptr"] as Int32Array, indices: a["neighbours.indices"] as Int32Array, sims: a["neighbours.sims"] as Float32Array },
    users: {
      userId: a["users.userId"] as Int32Array,
      indptr: a["users.indptr"] as Int32Array,
      indices: a["users.indices"] as Int32Array,
      liked: a["users.liked"] as Uint8Array,
    },
    ...alsOf(manifest.params, a["als.movies"] as Float32Array, nMovies(a), file("als.movies")),
    popular: popularOrder(likes),
  };
}

/** ALS's part of a model whose params.model is "als" or "blend": its factors must fill als.movies. */
function alsOf(params: Params, movies: Float32Array, count: number, file: string): { als?: ServedAls } {
  if (params.model !== "als" && params.model !== "blend") return {};
  const { factors, regularization, confidence, weight } = params;
  if (!(Number.isInteger(factors) && factors > 0 && movies.length === count * factors)) {
    throw new ModelFormatError(`${file}: has length ${movies.length}, expected ${count} movies x ${factors} factors (params.model is ${params.model})`);
  }
  if (!(regularization > 0 && confidence >= 0 && (params.model === "als" || (weight >= 0 && weight <= 1)))) {
    throw new ModelFormatError(`${file}: the model.json params regularization ${regularization}, confidence ${confidence}, weight ${weight} are out of range`);
  }
  return { als: { factors, movies, regularization, confidence, weight: params.model === "blend" ? weight : null } };
}

/** The steps of saveModel, told to `onStep` when each is done (tests stop a writer there). */
export type SaveStep = "staged" | "versioned" | "linked" | "swapped";

export interface SaveOptions {
  onStep?: (step: SaveStep) => void | Promise<void>;
}

/**
 * Publishes the model at `dir` atomically: writes model.json and one .bin per array into
 * `<dir>.versions/partial-<pid>`, renames that to `<dir>.versions/<time>-<pid>`, and renames a symlink
 * to it over `dir`. Readers see the old model or the new one, whatever is killed when. Refuses a model
 * without neighbours or one loadModel would refuse, and a `dir` that is not ours.
 */
export async function saveModel(dir: string, model: SavedModel, { onStep }: SaveOptions = {}): Promise<void> {
  const target = path.resolve(dir);
  const arrays = arraysOf(model);
  if (arrays["neighbours.indices"].length === 0) {
    throw new ModelDirError(`refusing to write a model with no neighbours to ${dir}: no two movies share a like in the training data`);
  }
  checkArrays(arrays, (name) => `model to write to ${dir}: ${name}`);
  const release = await lockModelDir(dir);
  try {
    const previous = await replaceable(target, dir);
    const versions = `${target}.versions`, staging = path.join(versions, `partial-${process.pid}`);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    const manifest: Manifest = { format: MODEL_FORMAT, ...model.manifest, arrays: {} };
    try {
      // The files are written (on libuv's threads) while this thread hashes the arrays; all settle before any cleanup.
      const writes = Object.entries(arrays).map(([name, array]) => writeDurably(path.join(staging, `${name}.bin`), bytesOf(array)));
      for (const [name, array] of Object.entries(arrays)) manifest.arrays[name] = { type: typeOf(array), length: array.length, sha256: sha256(bytesOf(array)) };
      const failed = (await Promise.allSettled(writes)).find((w) => w.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      await writeDurably(path.join(staging, "model.json"), Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
      await syncDir(staging);
      await onStep?.("staged");
      if (!previous || previous.layout === "empty") {
        // Nothing to replace: the staged folder becomes the model in one rename, a plain folder that uploads
        // (an Azure ML job's output) copy as it is; the symlink layout starts with the first replacement.
        if (previous) await rmdir(target);
        await rename(staging, target);
        await syncDir(path.dirname(target));
        await rmdir(versions).catch(() => undefined);
        await onStep?.("swapped");
        return;
      }
      const version = `${new Date().toISOString().replace(/[-:.]/g, "")}-${process.pid}`;
      await rename(staging, path.join(versions, version));
      await syncDir(versions);
      await onStep?.("versioned");
      const link = `${target}.link-${process.pid}`;
      await rm(link, { force: true });
      await symlink(`${path.basename(versions)}/${version}`, link);
      await onStep?.("linked");
      // A directory cannot be swapped for a symlink in one rename: an old-layout model moves aside (once; restored if killed here).
      if (previous.layout === "directory") await rename(target, path.join(versions, `migrated-${process.pid}`));
      await rename(link, target);
      await syncDir(path.dirname(target));
      await onStep?.("swapped");
      await removeOldVersions(versions, version);
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw (e as NodeJS.ErrnoException).code ? new ModelDirError(`cannot write the model to ${dir}: ${(e as Error).message}`) : e;
    }
  } finally {
    await release();
  }
}

/** Lock files this process holds, with how many callers hold each. */
const held = new Map<string, number>();
let releasedAtExit = false;

/**
 * Takes `<dir>.lock` for this process (till the returned release, or exit) after checking that `dir`
 * is absent or a model of ours, and removes what killed writers left beside it. A CLI calls it before
 * any work, so a second writer fails at once, naming the first. Re-entrant within a process.
 */
export async function lockModelDir(dir: string): Promise<() => Promise<void>> {
  const target = path.resolve(dir), lockFile = `${target}.lock`;
  if (held.has(lockFile)) {
    held.set(lockFile, held.get(lockFile)! + 1);
    return async () => void held.set(lockFile, held.get(lockFile)! - 1);
  }
  await replaceable(target, dir);
  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new ModelDirError(`cannot create the directory of ${dir}: ${e.code ?? e.message}`);
  });
  await takeLock(lockFile, dir);
  if (!releasedAtExit) process.once("exit", () => held.forEach((_, file) => unlinkQuietly(file)));
  releasedAtExit = true;
  held.set(lockFile, 1);
  await removeStale(target);
  return async () => {
    const count = held.get(lockFile)! - 1;
    if (count > 0) held.set(lockFile, count);
    else {
      held.delete(lockFile);
      await rm(lockFile, { force: true });
    }
  };
}

const unlinkQuietly = (file: string) => {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
};

/**
 * Creates the lock with our pid (and, on Linux, when our process started) in one step (link), taking over a lock
 * whose process is dead, or whose pid now belongs to a process started at another time (a reused pid).
 */
async function takeLock(lockFile: string, dir: string): Promise<void> {
  const mine = `${lockFile}.${process.pid}`;
  const start = startOf(process.pid);
  await writeFile(mine, `${process.pid}${start === undefined ? "" : ` ${start}`}\n`).catch((e: Error) => {
    throw new ModelDirError(`cannot lock ${dir}: ${e.message}`);
  });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(mine, lockFile);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new ModelDirError(`cannot lock ${dir} (${lockFile}): ${(e as NodeJS.ErrnoException).code}`);
      }
      const holder = await lockHolder(lockFile);
      if (holder === undefined) throw new ModelDirError(`cannot lock ${dir}: ${lockFile} exists but is not a lock of ours (no pid in it); remove it if nothing writes the model`);
      if (holds(holder) || attempt >= 3) {
        throw new ModelDirError(`${dir} is being written by process ${holder.pid} (lock ${lockFile}); wait for it to finish, or remove the lock if that process is not ours`);
      }
      // Stale: its writer died. Taken aside by rename so that two processes cannot both remove a fresh lock.
      const aside = `${lockFile}.stale-${process.pid}`;
      if (await rename(lockFile, aside).then(() => true, () => false)) {
        const now = await lockHolder(aside);
        if (now?.pid !== holder.pid || now.start !== holder.start) await link(aside, lockFile).catch(() => undefined);
        await rm(aside, { force: true });
      }
    }
  } finally {
    await rm(mine, { force: true });
  }
}

/** The writer a lock names: its pid, and when it started where the lock says (locks from before only have the pid). */
async function lockHolder(lockFile: string): Promise<{ pid: number; start?: string } | undefined> {
  const m = /^(\d+)(?: (\d+))?\n$/.exec(await readFile(lockFile, "utf8").catch(() => ""));
  return m ? { pid: Number(m[1]), start: m[2] } : undefined;
}

/** Whether the lock's writer still runs: its pid is alive and, where both are known, started when the lock says. */
function holds({ pid, start }: { pid: number; start?: string }): boolean {
  if (!alive(pid)) return false;
  const now = start === undefined ? undefined : startOf(pid);
  return now === undefined || now === start;
}

/** When process `pid` started, in clock ticks after boot (Linux: field 22 of /proc/<pid>/stat); undefined elsewhere. */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]; // after the name in parentheses: fields 3, 4, ...
  } catch {
    return undefined;
  }
}

/** A pid of ours is not alive: a lock or staging with it comes from an earlier process (a container reuses pids). */
export function alive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes what processes which died left: links, lock attempts and (from before format 2) staging and
 * moved-aside models beside `target`, staging in `<target>.versions`.
 */
async function removeStale(target: string): Promise<void> {
  const stale = async (dir: string, pattern: RegExp) => {
    for (const name of await readdir(dir).catch(() => [])) {
      const m = pattern.exec(name);
      if (m && !alive(Number(m[1]))) await rm(path.join(dir, name), { recursive: true, force: true });
    }
  };
  await stale(path.dirname(target), new RegExp(`^${escapeRegExp(path.basename(target))}\\.(?:partial-|link-|previous-|lock\\.|lock\\.stale-)(\\d+)$`));
  await stale(`${target}.versions`, /^partial-(\d+)$/);
  // A writer killed between the two renames of a takeover (old layout to symlink) left no model at target: put it back.
  for (const name of await readdir(`${target}.versions`).catch(() => [])) {
    const m = /^migrated-(\d+)$/.exec(name);
    if (m && !alive(Number(m[1])) && !(await lstat(target).then(() => true, () => false))) await rename(path.join(`${target}.versions`, name), target);
  }
}

/** After a swap, removes the other models in `versions` (a reader of the one just replaced retries on the new one). */
async function removeOldVersions(versions: string, current: string): Promise<void> {
  // By name, not content: a version whose removal was killed half-way is no longer a whole model, and is ours all the same.
  for (const name of await readdir(versions)) {
    if (name !== current && /^(\d{8}T\d+Z-\d+|migrated-\d+)$/.test(name)) await rm(path.join(versions, name), { recursive: true, force: true });
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * What is at `target` if it may be replaced: nothing, an empty directory, a symlink to a model of ours,
 * or an old-layout directory of ours. Anything else (a data folder, a file, a directory with other files) is refused.
 */
async function replaceable(target: string, dir: string): Promise<{ layout: "symlink" | "directory" | "empty" } | undefined> {
  const info = await lstat(target).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw new ModelDirError(`cannot use ${dir} as the model directory: ${e.code}`);
  });
  if (!info) return undefined;
  const refuse = (what: string) => new ModelDirError(`refusing to replace ${dir}: ${what}; give a new path, or the directory of a model this project wrote`);
  if (info.isSymbolicLink()) {
    const to = await readlink(target);
    if (new RegExp(`^${escapeRegExp(path.basename(target))}\\.versions/[^/.][^/]*$`).test(to)) return { layout: "symlink" };
    if (await ourModelDir(target)) return { layout: "symlink" };
    throw refuse(`it is a symlink to ${to}, which holds no model of this project`);
  }
  if (!info.isDirectory()) throw refuse("it is a file, not a model directory");
  if ((await readdir(target)).length === 0) return { layout: "empty" };
  if (!(await ourModelDir(target))) throw refuse("it is a directory that holds no model.json of this project, or holds other files too");
  return { layout: "directory" };
}

/** A directory holding a model.json with our format field and nothing but model.json and array files. */
async function ourModelDir(dir: string): Promise<boolean> {
  try {
    const info = await stat(path.join(dir, "model.json"));
    if (!info.isFile() || info.size > MAX_MANIFEST_BYTES) return false;
    const manifest = JSON.parse(await readFile(path.join(dir, "model.json"), "utf8"));
    if (typeof manifest?.format !== "number" || typeof manifest.arrays !== "object") return false;
    const ours = new Set(["model.json", ...Object.keys(ARRAYS).map((name) => `${name}.bin`)]);
    return (await readdir(dir)).every((name) => ours.has(name));
  } catch {
    return false;
  }
}

const MAX_MANIFEST_BYTES = 16 << 20;

/** Reads a model written by saveModel, checking model.json, each array's size and SHA-256, and the structure. */
export async function loadModel(dir: string): Promise<Model> {
  for (let attempt = 0; ; attempt++) {
    const real = await modelDirOf(dir);
    try {
      return await loadFrom(real, dir);
    } catch (e) {
      // A writer swapped in a new version and removed this one while we read it: read the new one.
      if (attempt < 3 && (await realpath(dir).catch(() => real)) !== real) continue;
      throw e;
    }
  }
}

async function modelDirOf(dir: string): Promise<string> {
  const real = await realpath(dir).catch((e: NodeJS.ErrnoException) => {
    throw new ModelFormatError(e.code === "ENOENT" ? `${path.join(dir, "model.json")}: missing, there is no model at ${dir} (train one first)`
      : `${dir}: cannot open the model directory (${e.code})`);
  });
  if (!(await stat(real)).isDirectory()) throw new ModelFormatError(`${dir}: expected a model directory, got a file`);
  return real;
}

async function loadFrom(real: string, dir: string): Promise<Model> {
  const manifestFile = path.join(dir, "model.json");
  const manifest = await readManifest(path.join(real, "model.json"), manifestFile);
  const file = (name: string) => path.join(dir, `${name}.bin`);
  const a: Arrays = {};
  for (const [name, { type }] of Object.entries(ARRAYS)) {
    const { length, sha256: sum } = manifest.arrays[name];
    a[name] = await readArray(path.join(real, `${name}.bin`), file(name), type, length);
    if (sha256(bytesOf(a[name])) !== sum) throw new ModelFormatError(`${file(name)}: SHA-256 differs from model.json's: the file was changed or corrupted`);
  }
  checkArrays(a, file);
  return modelOf(manifest, a, file);
}

async function readManifest(real: string, file: string): Promise<Manifest> {
  const info = await stat(real).catch((e: NodeJS.ErrnoException) => {
    throw new ModelFormatError(`${file}: ${e.code === "ENOENT" ? "missing: not a model directory" : `cannot read (${e.code})`}`);
  });
  if (!info.isFile() || info.size > MAX_MANIFEST_BYTES) throw new ModelFormatError(`${file}: expected a JSON file of at most ${MAX_MANIFEST_BYTES} bytes`);
  const text = await readFile(real, "utf8");
  if (text.trim() === "") throw new ModelFormatError(`${file}: empty`);
  let m: Record<string, any>;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const bad = (what: string) => new ModelFormatError(`${file}: ${what}`);
  if (typeof m !== "object" || m === null || Array.isArray(m)) throw bad("expected a JSON object");
  if (typeof m.format !== "number") throw bad("no format field: not a model of this project");
  if (m.format !== MODEL_FORMAT) {
    throw bad(`format ${m.format}, expected ${MODEL_FORMAT}${m.format < MODEL_FORMAT ? ": written by an older version, train the model again" : ": written by a newer version"}`);
  }
  for (const field of ["params", "input", "counts", "timings", "metrics", "arrays"]) {
    if (typeof m[field] !== "object" || m[field] === null) throw bad(`expected an object "${field}", got ${JSON.stringify(m[field]) ?? "none"}`);
  }
  if (m.fit !== "all" && m.fit !== "train") throw bad(`expected "fit" to be "all" or "train", got ${JSON.stringify(m.fit) ?? "none"}`);
  for (const name of Object.keys(m.arrays)) {
    if (!(name in ARRAYS)) throw bad(`unknown array ${JSON.stringify(name).slice(0, 80)} (expected ${Object.keys(ARRAYS).join(", ")})`);
  }
  for (const [name, { type }] of Object.entries(ARRAYS)) {
    const entry = m.arrays[name];
    if (typeof entry !== "object" || entry === null) throw bad(`no entry for array "${name}"`);
    if (entry.type !== type) throw bad(`array "${name}" has type ${JSON.stringify(entry.type)}, expected "${type}"`);
    if (!Number.isSafeInteger(entry.length) || entry.length < 0) throw bad(`array "${name}" has length ${JSON.stringify(entry.length)}, expected a count >= 0`);
    if (typeof entry.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(entry.sha256)) throw bad(`array "${name}" has no SHA-256 (64 hex digits)`);
  }
  return m as Manifest;
}

async function readArray(real: string, file: string, type: ArrayType, length: number): Promise<TypedArray> {
  const bytes = length * (type === "uint8" ? 1 : 4);
  const info = await stat(real).catch((e: NodeJS.ErrnoException) => {
    throw new ModelFormatError(`${file}: ${e.code === "ENOENT" ? "missing" : `cannot read (${e.code})`}`);
  });
  if (!info.isFile() || info.size !== bytes) {
    throw new ModelFormatError(`${file}: expected ${bytes} bytes (${length} ${type}), got ${info.isFile() ? info.size : "not a file"}`);
  }
  const array = type === "int32" ? new Int32Array(length) : type === "float32" ? new Float32Array(length) : new Uint8Array(length);
  const handle = await open(real, "r");
  try {
    const view = bytesOf(array);
    for (let done = 0; done < bytes;) {
      const { bytesRead } = await handle.read(view, done, bytes - done, done);
      if (bytesRead === 0) throw new ModelFormatError(`${file}: ended at byte ${done} of ${bytes}`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return array;
}

/** Writes every neighbour list as `movieId<TAB>neighbourMovieId:sim,...` to `out` via a file beside it; returns the lines. */
export async function writeNeighbours(model: Pick<Model, "movies" | "neighbours">, out: string): Promise<number> {
  const parent = await stat(path.dirname(path.resolve(out))).catch(() => undefined);
  if (!parent?.isDirectory()) throw new Error(`${out}: the directory ${path.dirname(out)} does not exist`);
  const info = await lstat(out).catch(() => undefined);
  if (info && !info.isFile()) throw new Error(`${out}: refusing to replace it, it is ${info.isDirectory() ? "a directory" : "not a regular file"}`);
  const { movies, neighbours } = model;
  const partial = `${out}.partial-${process.pid}`;
  try {
    await rm(partial, { force: true });
    const handle = await open(partial, "wx");
    let lines = 0, chunk = "";
    try {
      for (let m = 0; m < movies.movieId.length; m++) {
        const start = neighbours.indptr[m], end = neighbours.indptr[m + 1];
        if (start === end) continue;
        const parts = [];
        for (let p = start; p < end; p++) parts.push(`${movies.movieId[neighbours.indices[p]]}:${neighbours.sims[p].toFixed(6)}`);
        chunk += `${movies.movieId[m]}\t${parts.join(",")}\n`;
        lines++;
        if (chunk.length > 1 << 20) {
          await handle.write(chunk);
          chunk = "";
        }
      }
      await handle.write(chunk);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(partial, out);
    return lines;
  } catch (e) {
    await rm(partial, { force: true });
    throw new Error(`${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, "wx");
  try {
    await handle.writeFile(bytes);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const bytesOf = (array: TypedArray) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function typeOf(array: TypedArray): ArrayType {
  return array instanceof Int32Array ? "int32" : array instanceof Float32Array ? "float32" : "uint8";
}

function encodeStrings(strings: string[]): { offsets: Int32Array; bytes: Uint8Array } {
  const parts = strings.map((s) => Buffer.from(s, "utf8"));
  const offsets = new Int32Array(strings.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i] + p.length));
  return { offsets, bytes: Buffer.concat(parts) };
}

function decodeStrings(offsets: Int32Array, bytes: Uint8Array, file: string): string[] {
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  return Array.from({ length: offsets.length - 1 }, (_, i) => {
    try {
      return utf8.decode(bytes.subarray(offsets[i], offsets[i + 1]));
    } catch {
      throw new ModelFormatError(`${file}: string ${i} (bytes ${offsets[i]}..${offsets[i + 1]}) is not valid UTF-8`);
    }
  });
}
