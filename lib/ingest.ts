import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { isMainThread } from "node:worker_threads";
import { parse } from "csv-parse/sync";
import { excerpt } from "./text";
import { defaultThreads, runInWorker, runTask, sharedArray } from "./workers";

/** Ratings as columns; timestamp is dropped on read (spec step 2). */
export interface Ratings {
  userId: Int32Array;
  movieId: Int32Array;
  rating: Float32Array;
}

/** movies.csv as columns; `genres` is the raw `|`-separated field. */
export interface Movies {
  movieId: Int32Array;
  title: string[];
  genres: string[];
}

/** What was read, to fingerprint a model's input. */
export interface FileInfo {
  file: string;
  bytes: number;
  sha256: string;
}

export class MovieLensFormatError extends Error {
  override name = "MovieLensFormatError";
}

export type Progress = (done: number, total: number) => void;

const RATINGS_HEADER = "userId,movieId,rating,timestamp";
const MOVIES_HEADER = ["movieId", "title", "genres"];
const CHUNK = 4 << 20;
const MAX_ID = 0x7fffffff;
/** The longest line accepted in either file; real lines are under 300 bytes (ml-25m movies.csv: 225). */
export const MAX_LINE = 64 << 10;
/** Ratings have at most this many decimals, so that likedOf compares them exactly (see split.ts). */
export const RATING_DECIMALS = 6;
const RATING_SCALE = 10 ** RATING_DECIMALS;

/** How readRatings runs: progress in bytes, and the threads that parse chunks of the file. */
export interface ReadOptions {
  onProgress?: Progress;
  /** Threads parsing chunks of ratings.csv, split at line boundaries; default: the cores available. */
  threads?: number;
  /** Ends the threads and rejects with its reason. */
  signal?: AbortSignal;
}

/**
 * Reads ratings.csv into typed arrays, no string or object per row: the file is cut at line boundaries
 * into one chunk per thread, each parsed on a worker thread into its region of shared columns, and
 * the regions moved together in file order.
 * Copes with a BOM, CRLF or LF, and a missing final newline; any other irregularity throws a
 * MovieLensFormatError naming file, line and value. The file's SHA-256 is taken on one more thread meanwhile.
 */
export async function readRatings(file: string, options: ReadOptions = {}): Promise<{ ratings: Ratings; info: FileInfo }> {
  const { ratings, info } = await ratingsOf(file, options);
  return { ratings, info: await info };
}

/** readRatings, returning once the ratings are parsed: `info` resolves when the SHA-256 is taken. */
async function ratingsOf(file: string, { onProgress, threads = defaultThreads(), signal }: ReadOptions): Promise<{ ratings: Ratings; info: Promise<FileInfo> }> {
  // Synchronous up to the start of the threads, so that they start before the caller goes on (ingest parses movies.csv
  // on this thread meanwhile, which would otherwise hold back these reads).
  const { fd, size } = openInput(file);
  let cut: { bounds: number[]; regions: number[] };
  try {
    cut = cutChunks(file, fd, size, Math.max(1, threads));
  } finally {
    closeSync(fd);
  }
  const { bounds, regions } = cut, rows = regions[regions.length - 1];
  const hashing = new AbortController();
  const sha256 = runInWorker("ingest.sha256", sha256Task, file, hashing.signal);
  sha256.catch(() => {}); // awaited below, unless parsing fails first and ends the thread
  try {
    const counter = sharedArray(Int32Array, 1);
    const progress = onProgress && { counter, total: size, report: (kib: number) => onProgress(Math.min(kib * 1024, size), size) };
    const job: ChunkJob = { file, bounds, regions, counter, userId: sharedArray(Int32Array, rows), movieId: sharedArray(Int32Array, rows), rating: sharedArray(Float32Array, rows) };
    const chunks = await runTask("ingest.parse", parseChunkTask, job, bounds.length - 1, progress, signal);
    const ratings = await joinChunks(file, chunks, job);
    onProgress?.(size, size);
    const info = sha256.then((sha256) => ({ file: path.basename(file), bytes: size, sha256 }));
    info.catch(() => {}); // awaited by the caller, unless it fails first
    return { ratings, info };
  } catch (e) {
    hashing.abort();
    await sha256.catch(() => {}); // its thread has exited
    throw e;
  }
}

/**
 * Checks the header and cuts the data after it into `threads` chunks, each starting just after a
 * newline (some may be empty): their `threads + 1` byte offsets, and as many row offsets that leave
 * each chunk room for its ratings, estimated from the line lengths seen here.
 */
function cutChunks(file: string, fd: number, size: number, threads: number): { bounds: number[]; regions: number[] } {
  if (size === 0) throw new MovieLensFormatError(`${file}: empty file, expected header "${RATINGS_HEADER}"`);
  const window = Buffer.allocUnsafe(MAX_LINE + 2);
  const readAt = (offset: number, length = window.length) => window.subarray(0, readSync(fd, window, 0, length, offset));
  const head = readAt(0);
  let newline = head.indexOf(10);
  if (newline < 0 && head.length < size) newline = head.length; // a first line longer than the window
  const lineEnd = newline < 0 ? head.length : newline;
  if (lineEnd > MAX_LINE) throw new MovieLensFormatError(`${file}:1: line longer than ${MAX_LINE} bytes, starting "${excerpt(head.toString("latin1", 0, 40))}"`);
  const header = head.toString("utf8", 0, lineEnd > 0 && head[lineEnd - 1] === 13 ? lineEnd - 1 : lineEnd).replace(/^\ufeff/, "");
  if (header !== RATINGS_HEADER) throw new MovieLensFormatError(`${file}:1: expected header "${RATINGS_HEADER}", got "${excerpt(header)}"`);
  const bounds = [newline < 0 ? size : newline + 1];
  for (let i = 1; i < threads; i++) {
    const from = Math.max(bounds[i - 1], bounds[0] + Math.floor(((size - bounds[0]) * i) / threads));
    // The chunk starts after the first newline at or after from - 1; with none near (a line too long, which its chunk
    // reports), this chunk stays empty.
    const at = from > bounds[i - 1] ? readAt(from - 1).indexOf(10) : -1;
    bounds.push(at < 0 ? bounds[i - 1] : from + at);
  }
  bounds.push(size);
  // Room for each chunk's rows from its mean line length in SAMPLES windows spread over it, and 5% more. Rows
  // move down over the gaps when joined, but the gaps' memory stays in use; a chunk that outgrows its region
  // goes on in a copy of its own (see joinChunks).
  const regions = [0];
  for (let i = 0; i < threads; i++) {
    let bytes = 0, lines = 0;
    for (let j = 0; j < SAMPLES; j++) {
      const sample = readAt(bounds[i] + Math.floor(((bounds[i + 1] - bounds[i]) * (j + 0.5)) / SAMPLES), SAMPLE);
      const first = sample.indexOf(10), last = sample.lastIndexOf(10);
      for (let at = first; at < last; at = sample.indexOf(10, at + 1)) lines++;
      if (first < last) bytes += last - first;
    }
    const lineBytes = lines > 0 ? Math.max(MIN_LINE, bytes / lines) : MIN_LINE;
    regions.push(regions[i] + Math.ceil(((bounds[i + 1] - bounds[i]) * 1.05) / lineBytes) + 16);
  }
  return { bounds, regions };
}

const SAMPLES = 16, SAMPLE = 4096;
/** The shortest line a rating can be: "1,1,1,1\n". */
const MIN_LINE = 8;

/** What the threads parsing chunks are given: the file, the chunks' byte and row offsets, a progress counter in KiB, and the columns. */
interface ChunkJob extends Omit<Columns, "count"> {
  file: string;
  bounds: number[];
  regions: number[];
  counter: Int32Array;
}

/** Columns, in shared memory so that worker threads fill them without a copy. */
interface Columns {
  userId: Int32Array;
  movieId: Int32Array;
  rating: Float32Array;
  count: number;
}

/** A chunk of ratings.csv parsed; positions are byte offsets in the file, made line numbers only on error. */
interface ParsedChunk extends Columns {
  /** The first blank line, or -1: blank lines are an error only if a rating follows. */
  blankAt: number;
  /** A rating followed a blank line of this chunk (the chunk stopped there). */
  blankThenRating: boolean;
  /** The first line that is neither a rating nor blank: where it starts and what is wrong. */
  error?: { at: number; message: string };
  /** The columns are still the chunk's region of the shared ones (it did not outgrow it). */
  inRegion: boolean;
}

const BLOCK = 1 << 20;

/**
 * Parses the chunk `index` of `threads` of ratings.csv (run on a worker thread by readRatings; on
 * one thread it parses every chunk). Stops at the first bad line, or at a rating after a blank line.
 */
export function parseChunkTask(job: ChunkJob, index: number, threads: number): ParsedChunk {
  const { file, bounds, regions, counter } = job;
  const chunks = bounds.length - 1, from = (index * chunks) / threads, to = ((index + 1) * chunks) / threads;
  const first = bounds[from], last = bounds[to];
  const growTo = (cols: Columns, capacity: number): Columns => {
    const grown = { userId: sharedArray(Int32Array, capacity), movieId: sharedArray(Int32Array, capacity), rating: sharedArray(Float32Array, capacity), count: cols.count };
    grown.userId.set(cols.userId.subarray(0, cols.count));
    grown.movieId.set(cols.movieId.subarray(0, cols.count));
    grown.rating.set(cols.rating.subarray(0, cols.count));
    return grown;
  };
  const region = <T extends Int32Array | Float32Array>(column: T) => column.subarray(regions[from], regions[to]) as T;
  let cols: Columns = { userId: region(job.userId), movieId: region(job.movieId), rating: region(job.rating), count: 0 };
  let blankAt = -1, blankThenRating = false;
  const chunk = (error?: ParsedChunk["error"]): ParsedChunk => ({ ...cols, blankAt, blankThenRating, error, inRegion: cols.userId.buffer === job.userId.buffer });
  const buf = Buffer.allocUnsafe(BLOCK + 4); // + 1 for the newline a final line may lack, + 3 for four-byte reads there
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const fd = openSync(file, "r");
  try {
    let pos = first; // the file offset of buf[0]
    let kept = 0; // bytes of an unfinished line carried to the front of buf
    for (;;) {
      const n = pos + kept < last ? readSync(fd, buf, kept, Math.min(BLOCK - kept, last - pos - kept), pos + kept) : 0;
      Atomics.add(counter, 0, n >> 10);
      let end = kept + n;
      if (n === 0) {
        if (kept === 0) return chunk();
        buf[end++] = 10;
      }
      const stop = buf.lastIndexOf(10, end - 1) + 1; // the complete lines end here
      let p = 0;
      while (p < stop) {
        if (cols.count === cols.userId.length) cols = growTo(cols, Math.ceil(cols.count * 1.5));
        const before = cols.count;
        const limit = blankAt < 0 ? cols.userId.length - before : 1;
        p = parseLines(buf, view, p, stop, cols, limit);
        if (blankAt >= 0 && cols.count > before) {
          blankThenRating = true;
          return chunk();
        }
        if (p === stop || cols.count - before === limit) continue;
        // The fast path refused the line at p: blank, too long, or wrong.
        const newline = buf.indexOf(10, p);
        if (newline - p > MAX_LINE) return chunk(longLine(buf, p, pos));
        const text = buf.toString("utf8", p, newline > p && buf[newline - 1] === 13 ? newline - 1 : newline);
        if (text !== "") return chunk({ at: pos + p, message: ratingsLineError(text) });
        if (blankAt < 0) blankAt = pos + p;
        p = newline + 1;
      }
      kept = end - stop;
      if (kept > MAX_LINE) return chunk(longLine(buf, stop, pos));
      buf.copy(buf, 0, stop, end);
      pos += stop;
    }
  } finally {
    closeSync(fd);
  }
}

const longLine = (buf: Buffer, p: number, pos: number) => ({ at: pos + p, message: `line longer than ${MAX_LINE} bytes, starting "${excerpt(buf.toString("latin1", p, p + 40))}"` });

/**
 * The hot loop: parses up to `limit` lines "userId,movieId,rating,timestamp\n" of buf[start, stop)
 * into `cols` (stop is just past a newline; `view` is buf's DataView). Returns where it stopped: stop,
 * after `limit` lines, or at a line it refused, which the caller then looks at.
 */
function parseLines(buf: Uint8Array, view: DataView, start: number, stop: number, cols: Columns, limit: number): number {
  const { userId, movieId, rating } = cols;
  let n = cols.count;
  const end = n + limit;
  while (start < stop && n < end) {
    let p = start, c = buf[p], u = 0, m = 0, r = 0;
    if (c < 48 || c > 57) break;
    do { u = u * 10 + c - 48; c = buf[++p]; } while (c >= 48 && c <= 57);
    if (c !== 44 || u > MAX_ID) break;
    c = buf[++p];
    if (c < 48 || c > 57) break;
    do { m = m * 10 + c - 48; c = buf[++p]; } while (c >= 48 && c <= 57);
    if (c !== 44 || m > MAX_ID) break;
    c = buf[++p];
    if (c < 48 || c > 57) break;
    do { r = r * 10 + c - 48; c = buf[++p]; } while (c >= 48 && c <= 57);
    if (c === 46) {
      let scale = 1;
      c = buf[++p];
      if (c < 48 || c > 57) break;
      do { r = r * 10 + c - 48; scale *= 10; c = buf[++p]; } while (c >= 48 && c <= 57);
      if (scale > RATING_SCALE) break;
      r /= scale;
    }
    if (c !== 44 || !(r >= 0.5 && r <= 5)) break;
    c = buf[++p];
    if (c < 48 || c > 57) break;
    // The timestamp is only checked, four bytes at a time while all four are 0x30-0x39 (the group with the newline is not).
    for (let x = view.getUint32(++p, true); (x & 0xf0f0f0f0) === 0x30303030 && ((x + 0x06060606) & 0xf0f0f0f0) === 0x30303030; x = view.getUint32(p, true)) p += 4;
    for (c = buf[p]; c >= 48 && c <= 57; ) c = buf[++p];
    if (c === 13) c = buf[++p];
    if (c !== 10 || p - start > MAX_LINE) break;
    userId[n] = u;
    movieId[n] = m;
    rating[n++] = r;
    start = p + 1;
  }
  cols.count = n;
  return start;
}

/** Joins the chunks' columns in file order, or throws the error a parse from the start would meet first. */
async function joinChunks(file: string, chunks: ParsedChunk[], { regions, userId, movieId, rating }: ChunkJob): Promise<Ratings> {
  const fail = async (at: number, message: string) => new MovieLensFormatError(`${file}:${await lineAt(file, at)}: ${message}`);
  let blankAt = -1; // a blank line in an earlier chunk that no rating has followed yet
  for (const chunk of chunks) {
    if (blankAt < 0 && chunk.blankThenRating) blankAt = chunk.blankAt;
    if (blankAt >= 0 && (chunk.count > 0 || chunk.blankThenRating)) throw await fail(blankAt, "blank line before more ratings");
    if (chunk.error) throw await fail(chunk.error.at, chunk.error.message);
    if (blankAt < 0) blankAt = chunk.blankAt;
  }
  const n = chunks.reduce((sum, c) => sum + c.count, 0);
  if (n === 0) throw new MovieLensFormatError(`${file}: no ratings after the header`);
  if (chunks.every((c) => c.inRegion)) {
    // Each region's rows move down to follow the previous region's (a move within shared memory the chunks already wrote).
    let offset = 0;
    chunks.forEach(({ count }, i) => {
      if (regions[i] !== offset) for (const column of [userId, movieId, rating]) column.copyWithin(offset, regions[i], regions[i] + count);
      offset += count;
    });
    return { userId: userId.subarray(0, n), movieId: movieId.subarray(0, n), rating: rating.subarray(0, n) };
  }
  const ratings: Ratings = { userId: new Int32Array(n), movieId: new Int32Array(n), rating: new Float32Array(n) };
  let offset = 0;
  for (const c of chunks) {
    ratings.userId.set(c.userId.subarray(0, c.count), offset);
    ratings.movieId.set(c.movieId.subarray(0, c.count), offset);
    ratings.rating.set(c.rating.subarray(0, c.count), offset);
    offset += c.count;
  }
  return ratings;
}

/** The line number of byte `offset` of a file: newlines before it, plus one (only for error messages). */
async function lineAt(file: string, offset: number): Promise<number> {
  const handle = await open(file, "r");
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    let line = 1;
    for (let pos = 0; pos < offset; ) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(BLOCK, offset - pos), pos);
      if (bytesRead === 0) break;
      const read = buf.subarray(0, bytesRead);
      for (let i = read.indexOf(10); i >= 0; i = read.indexOf(10, i + 1)) line++;
      pos += bytesRead;
    }
    return line;
  } finally {
    await handle.close();
  }
}

/** The SHA-256 of a file, in hex (run on a worker thread by readRatings). */
export function sha256Task(file: string): string {
  // The parse comes first: on Linux a nice value is the calling thread's alone, so this thread takes what
  // the parse leaves (train awaits the hash after the stages that leave a core idle).
  if (!isMainThread && process.platform === "linux") os.setPriority(19);
  const hash = createHash("sha256");
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let n; (n = readSync(fd, buf, 0, CHUNK, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/** Says what is wrong with a ratings line that the fast parser refused. */
function ratingsLineError(text: string): string {
  const fields = text.split(",");
  if (fields.length !== 4) return `expected 4 fields (${RATINGS_HEADER}), got ${fields.length}: "${excerpt(text)}"`;
  const [u, m, r, t] = fields;
  for (const [name, value] of [["userId", u], ["movieId", m]] as const) {
    if (!/^\d+$/.test(value) || Number(value) > MAX_ID) return `${name} is not a non-negative 32-bit integer: "${excerpt(value)}"`;
  }
  if (!/^\d+(\.\d+)?$/.test(r)) return `rating is not a number: "${excerpt(r)}"`;
  if (!(Number(r) >= 0.5 && Number(r) <= 5)) return `rating ${excerpt(r)} is outside 0.5..5`;
  if (/\.\d{7}/.test(r)) return `rating ${excerpt(r)} has more than ${RATING_DECIMALS} decimals`;
  return `timestamp is not an integer: "${excerpt(t)}"`;
}

/** Reads movies.csv, UTF-8, with an RFC 4180 parser (titles hold commas and quotes). */
export async function readMovies(file: string): Promise<{ movies: Movies; info: FileInfo }> {
  const { fd } = openInput(file);
  let bytes: Buffer;
  try {
    bytes = named(file, () => readFileSync(fd));
  } finally {
    closeSync(fd);
  }
  checkLines(file, bytes);
  const options = { bom: true, skip_empty_lines: true };
  let records: string[][];
  try {
    records = parse(bytes, options);
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new MovieLensFormatError(`${file}:${err.lines ?? "?"}: ${excerpt(err.message, 200)}`);
  }
  const header = (records[0] ?? []).join(",");
  if (header !== MOVIES_HEADER.join(",")) {
    throw new MovieLensFormatError(`${file}:1: expected header "${MOVIES_HEADER.join(",")}", got "${excerpt(header)}"`);
  }
  // Parsing again with line numbers costs twice the parse: only for an error message.
  const lineOf = (i: number) => (parse(bytes, { ...options, info: true }) as unknown as { info: { lines: number } }[])[i].info.lines;
  const n = records.length - 1;
  if (n === 0) throw new MovieLensFormatError(`${file}: no movies after the header`);
  const movies: Movies = { movieId: new Int32Array(n), title: new Array<string>(n), genres: new Array<string>(n) };
  const firstRecord = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const record = records[i + 1];
    const where = () => `${file}:${lineOf(i + 1)}`;
    if (record.length !== 3) throw new MovieLensFormatError(`${where()}: expected 3 fields (movieId,title,genres), got ${record.length}`);
    const [id, title, genres] = record;
    if (!/^\d+$/.test(id) || Number(id) > MAX_ID) throw new MovieLensFormatError(`${where()}: movieId is not a non-negative 32-bit integer: "${excerpt(id)}"`);
    const movieId = Number(id);
    const seen = firstRecord.get(movieId);
    if (seen !== undefined) throw new MovieLensFormatError(`${where()}: duplicate movieId ${movieId} (first on line ${lineOf(seen)})`);
    firstRecord.set(movieId, i + 1);
    movies.movieId[i] = movieId;
    movies.title[i] = title;
    movies.genres[i] = genres;
  }
  return { movies, info: { file: path.basename(file), bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") } };
}

/** Opens an input file for reading, refusing anything but a regular file (a directory, a device, a pipe). */
function openInput(file: string): { fd: number; size: number } {
  const stats = named(file, () => statSync(file));
  if (stats.isDirectory()) throw new Error(`${file}: is a directory, expected a file`);
  if (!stats.isFile()) throw new Error(`${file}: is not a regular file (a device, a pipe or a socket), expected a file`);
  return { fd: named(file, () => openSync(file, "r")), size: stats.size };
}

/** f(), its file system error as inputError's sentence. */
function named<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw inputError(file, e as NodeJS.ErrnoException);
  }
}

/** A file system error as one sentence naming the file. */
function inputError(file: string, e: NodeJS.ErrnoException): Error {
  const reason = e.code === "ENOENT" ? "no such file" : e.code === "EACCES" ? "permission denied" : e.code === "ENOTDIR" ? "a parent is not a directory"
    : e.code === "ERR_FS_FILE_TOO_LARGE" ? "too large to read" : `cannot read it (${e.code ?? e.message})`;
  return new Error(`${file}: ${reason}`);
}

/** Throws on the first line that is longer than MAX_LINE or not UTF-8, naming it. */
function checkLines(file: string, bytes: Buffer): void {
  const utf8 = isUtf8(bytes);
  for (let start = 0, line = 1; start < bytes.length; line++) {
    const newline = bytes.indexOf(10, start);
    const end = newline < 0 ? bytes.length : newline;
    if (end - start > MAX_LINE) throw new MovieLensFormatError(`${file}:${line}: line longer than ${MAX_LINE} bytes, starting "${excerpt(bytes.toString("latin1", start, start + 40))}"`);
    if (!utf8 && !isUtf8(bytes.subarray(start, end))) {
      throw new MovieLensFormatError(`${file}:${line}: not valid UTF-8 (Latin-1 or another encoding?): "${excerpt(bytes.toString("latin1", start, end))}"`);
    }
    start = end + 1;
  }
}

/**
 * Reads a MovieLens directory (ratings.csv and movies.csv): movies.csv on this thread while worker
 * threads parse ratings.csv. Returns then; `files` resolves when the SHA-256 of ratings.csv is taken.
 */
export async function ingest(dir: string, options: ReadOptions = {}): Promise<{ ratings: Ratings; movies: Movies; files: Promise<FileInfo[]> }> {
  const stop = new AbortController();
  options.signal?.addEventListener("abort", () => stop.abort(options.signal!.reason), { once: true });
  const reading = ratingsOf(path.join(dir, "ratings.csv"), { ...options, signal: stop.signal });
  reading.catch(() => {}); // an error in movies.csv is reported first
  let movies: Awaited<ReturnType<typeof readMovies>>;
  try {
    movies = await readMovies(path.join(dir, "movies.csv"));
  } catch (e) {
    stop.abort(e); // the ratings' threads end now, not when done
    await reading.catch(() => {});
    throw e;
  }
  const ratings = await reading;
  const files = ratings.info.then((info) => [info, movies.info]);
  files.catch(() => {}); // awaited by the caller, unless it fails first
  return { ratings: ratings.ratings, movies: movies.movies, files };
}

/** Reads a MovieLens directory (ratings.csv and movies.csv), with the files' SHA-256. */
export async function readMovieLens(dir: string, options: ReadOptions = {}): Promise<{ ratings: Ratings; movies: Movies; files: FileInfo[] }> {
  const input = await ingest(dir, options);
  return { ...input, files: await input.files };
}
