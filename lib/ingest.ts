import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { excerpt } from "./text";
import { runInWorker } from "./workers";

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

/**
 * Streams ratings.csv into typed arrays: no string or object per row.
 * Copes with a BOM, CRLF or LF, and a missing final newline; any other
 * irregularity throws a MovieLensFormatError naming file, line and value.
 * The file's SHA-256 is taken on a worker thread meanwhile (ended when parsing fails).
 */
export async function readRatings(file: string, onProgress?: Progress): Promise<{ ratings: Ratings; info: FileInfo }> {
  const { handle, size: total } = await openInput(file);
  const hashing = new AbortController();
  const sha256 = runInWorker("ingest.sha256", sha256Task, file, hashing.signal);
  sha256.catch(() => {}); // awaited below, unless parsing fails first and ends the thread
  let capacity = Math.max(1024, Math.ceil(total / 20));
  let userId = new Int32Array(capacity);
  let movieId = new Int32Array(capacity);
  let rating = new Float32Array(capacity);
  let count = 0;
  const grow = () => {
    capacity = Math.ceil(capacity * 1.5);
    const u = new Int32Array(capacity), m = new Int32Array(capacity), r = new Float32Array(capacity);
    u.set(userId); m.set(movieId); r.set(rating);
    userId = u; movieId = m; rating = r;
  };

  const buf = Buffer.allocUnsafe(CHUNK + 1); // + 1 for the newline a final line may lack
  let kept = 0; // bytes of an unfinished line carried to the front of buf
  let read = 0, line = 0;
  let blankLine = 0; // a blank line is an error only if data follows it
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buf, kept, CHUNK - kept, null);
      read += bytesRead;
      let end = kept + bytesRead;
      const last = bytesRead === 0;
      if (last) {
        if (kept === 0) break;
        buf[end++] = 10;
      }
      const stop = buf.lastIndexOf(10, end - 1) + 1; // the complete lines end here
      let p = 0;
      while (p < stop) {
        line++;
        const start = p;
        // Hot path: "userId,movieId,rating,timestamp\n"; any surprise falls through to the slow path below.
        parse: {
          if (line === 1) break parse;
          let c = buf[p], u = 0, m = 0, r = 0;
          if (c < 48 || c > 57) break parse;
          do { u = u * 10 + c - 48; c = buf[++p]; } while (c >= 48 && c <= 57);
          if (c !== 44 || u > MAX_ID) break parse;
          c = buf[++p];
          if (c < 48 || c > 57) break parse;
          do { m = m * 10 + c - 48; c = buf[++p]; } while (c >= 48 && c <= 57);
          if (c !== 44 || m > MAX_ID) break parse;
          c = buf[++p];
          if (c < 48 || c > 57) break parse;
          do { r = r * 10 + c - 48; c = buf[++p]; } while (c >= 48 && c <= 57);
          if (c === 46) {
            let scale = 1;
            c = buf[++p];
            if (c < 48 || c > 57) break parse;
            do { r = r * 10 + c - 48; scale *= 10; c = buf[++p]; } while (c >= 48 && c <= 57);
            if (scale > RATING_SCALE) break parse;
            r /= scale;
          }
          if (c !== 44 || !(r >= 0.5 && r <= 5)) break parse;
          c = buf[++p];
          if (c < 48 || c > 57) break parse;
          do c = buf[++p]; while (c >= 48 && c <= 57);
          if (c === 13) c = buf[++p];
          if (c !== 10) break parse;
          if (blankLine) throw new MovieLensFormatError(`${file}:${blankLine}: blank line before more ratings`);
          if (count === capacity) grow();
          userId[count] = u;
          movieId[count] = m;
          rating[count++] = r;
          p++;
          continue;
        }
        const newline = buf.indexOf(10, start);
        const text = buf.toString("utf8", start, newline > start && buf[newline - 1] === 13 ? newline - 1 : newline);
        p = newline + 1;
        if (line === 1) {
          const header = text.replace(/^\ufeff/, "");
          if (header !== RATINGS_HEADER) throw new MovieLensFormatError(`${file}:1: expected header "${RATINGS_HEADER}", got "${excerpt(header)}"`);
        } else if (text === "") {
          blankLine ||= line;
        } else {
          throw new MovieLensFormatError(`${file}:${line}: ${ratingsLineError(text)}`);
        }
      }
      kept = end - stop;
      if (kept > MAX_LINE) throw new MovieLensFormatError(`${file}:${line + 1}: line longer than ${MAX_LINE} bytes, starting "${excerpt(buf.toString("latin1", stop, stop + 40))}"`);
      buf.copy(buf, 0, stop, end);
      if (last) break;
      onProgress?.(read, total);
    }
  } catch (e) {
    hashing.abort();
    throw e;
  } finally {
    await handle.close();
  }
  if (line === 0) throw new MovieLensFormatError(`${file}: empty file, expected header "${RATINGS_HEADER}"`);
  if (count === 0) throw new MovieLensFormatError(`${file}: no ratings after the header`);
  onProgress?.(read, total);
  return {
    ratings: { userId: userId.slice(0, count), movieId: movieId.slice(0, count), rating: rating.slice(0, count) },
    info: { file: path.basename(file), bytes: total, sha256: await sha256 },
  };
}

/** The SHA-256 of a file, in hex (run on a worker thread by readRatings). */
export function sha256Task(file: string): string {
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
  const { handle } = await openInput(file);
  let bytes: Buffer;
  try {
    bytes = await handle.readFile().catch((e) => Promise.reject(inputError(file, e)));
  } finally {
    await handle.close();
  }
  checkLines(file, bytes);
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(bytes, { bom: true, skip_empty_lines: true, info: true }) as unknown as typeof records;
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new MovieLensFormatError(`${file}:${err.lines ?? "?"}: ${excerpt(err.message, 200)}`);
  }
  const header = (records[0]?.record ?? []).join(",");
  if (header !== MOVIES_HEADER.join(",")) {
    throw new MovieLensFormatError(`${file}:1: expected header "${MOVIES_HEADER.join(",")}", got "${excerpt(header)}"`);
  }
  const n = records.length - 1;
  if (n === 0) throw new MovieLensFormatError(`${file}: no movies after the header`);
  const movies: Movies = { movieId: new Int32Array(n), title: new Array<string>(n), genres: new Array<string>(n) };
  const firstLine = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const { record, info } = records[i + 1];
    const where = `${file}:${info.lines}`;
    if (record.length !== 3) throw new MovieLensFormatError(`${where}: expected 3 fields (movieId,title,genres), got ${record.length}`);
    const [id, title, genres] = record;
    if (!/^\d+$/.test(id) || Number(id) > MAX_ID) throw new MovieLensFormatError(`${where}: movieId is not a non-negative 32-bit integer: "${excerpt(id)}"`);
    const movieId = Number(id);
    const seen = firstLine.get(movieId);
    if (seen !== undefined) throw new MovieLensFormatError(`${where}: duplicate movieId ${movieId} (first on line ${seen})`);
    firstLine.set(movieId, info.lines);
    movies.movieId[i] = movieId;
    movies.title[i] = title;
    movies.genres[i] = genres;
  }
  return { movies, info: { file: path.basename(file), bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") } };
}

/** Opens an input file for reading, refusing anything but a regular file (a directory, a device, a pipe). */
async function openInput(file: string): Promise<{ handle: FileHandle; size: number }> {
  const stats = await stat(file).catch((e) => Promise.reject(inputError(file, e)));
  if (stats.isDirectory()) throw new Error(`${file}: is a directory, expected a file`);
  if (!stats.isFile()) throw new Error(`${file}: is not a regular file (a device, a pipe or a socket), expected a file`);
  return { handle: await open(file, "r").catch((e) => Promise.reject(inputError(file, e))), size: stats.size };
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

/** Reads a MovieLens directory (ratings.csv and movies.csv). */
export async function readMovieLens(dir: string, onProgress?: Progress): Promise<{ ratings: Ratings; movies: Movies; files: FileInfo[] }> {
  const movies = await readMovies(path.join(dir, "movies.csv"));
  const ratings = await readRatings(path.join(dir, "ratings.csv"), onProgress);
  return { ratings: ratings.ratings, movies: movies.movies, files: [ratings.info, movies.info] };
}
