import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { link, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Argument, Command } from "commander";
import { stringify } from "csv-stringify/sync";
import yauzl from "yauzl";
import { NO_GENRES } from "./features";
import { alive } from "./model-io";
import { httpUrl } from "./args";
import { progressReporter } from "./progress";

/** The MovieLens sets `download` knows; each is `<name>.zip` beside `<name>.zip.md5` at the base URL. */
export const DATASETS = ["ml-latest-small", "ml-100k", "ml-25m", "ml-32m"] as const;
export type Dataset = (typeof DATASETS)[number];

/** The files `train` needs from a MovieLens folder. */
export const MOVIELENS_FILES = ["ratings.csv", "movies.csv"];

/** Where GroupLens publishes them; $MOVIELENS_BASE_URL or --base-url points elsewhere (a mirror, a test server). */
export const GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/";

const MB = 1 << 20;

/**
 * What `download` takes from each zip: the entries it needs, by exact name, each with a size limit
 * (about twice the published file), and the zip's own limit. ml-100k's files are converted after.
 */
export const ZIP_CONTENTS: Record<Dataset, { maxZip: number; entries: Record<string, number> }> = {
  "ml-latest-small": { maxZip: 8 * MB, entries: { "ratings.csv": 8 * MB, "movies.csv": 2 * MB } },
  "ml-100k": { maxZip: 16 * MB, entries: { "u.data": 8 * MB, "u.item": MB, "u.genre": 4096 } },
  "ml-25m": { maxZip: 512 * MB, entries: { "ratings.csv": 1400 * MB, "movies.csv": 16 * MB } },
  "ml-32m": { maxZip: 512 * MB, entries: { "ratings.csv": 1800 * MB, "movies.csv": 16 * MB } },
};

export class DownloadError extends Error {
  override name = "DownloadError";
}

export interface DownloadOptions {
  dest?: string;
  baseUrl?: string;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Downloads `<baseUrl><name>.zip`, checks it against the published `<name>.zip.md5`, and extracts the
 * files it needs into `<dest>/<name>` through a staging directory renamed into place: a failed or
 * interrupted run leaves no `<dest>/<name>`. An existing `<dest>/<name>` holding ratings.csv and
 * movies.csv is kept; one holding neither gets them beside its other files; anything else is refused.
 */
export async function downloadMovieLens(name: Dataset, options: DownloadOptions = {}): Promise<string> {
  const { dest = "data", onProgress } = options;
  const base = (options.baseUrl ?? process.env.MOVIELENS_BASE_URL ?? GROUPLENS_URL).replace(/\/?$/, "/");
  const target = path.resolve(dest, name);
  if (await targetState(target) === "complete") return target;
  const url = `${base}${name}.zip`;
  const expected = await publishedMd5(`${url}.md5`);
  await mkdir(dest, { recursive: true });
  await removeStale(dest, name);
  const zip = path.resolve(dest, `.${name}.zip.partial-${process.pid}`);
  const staging = path.resolve(dest, `.${name}.partial-${process.pid}`);
  try {
    const md5 = await fetchTo(url, zip, ZIP_CONTENTS[name].maxZip, onProgress);
    if (md5 !== expected) throw new DownloadError(`${url}: checksum mismatch: expected md5 ${expected} (from ${url}.md5), got ${md5}`);
    await unzip(zip, staging, name, url);
    if (name === "ml-100k") await convertMl100k(staging, url);
    await publish(staging, target);
    return target;
  } finally {
    await rm(zip, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** Removes the zip and staging folder that killed runs left in `dest` (`.<name>.zip.partial-<pid>`, `.<name>.partial-<pid>`). */
async function removeStale(dest: string, name: Dataset): Promise<void> {
  const pattern = new RegExp(`^\\.${name}(?:\\.zip)?\\.partial-(\\d+)$`); // set names hold only [a-z0-9-]
  for (const entry of await readdir(dest)) {
    const m = pattern.exec(entry);
    if (m && !alive(Number(m[1]))) await rm(path.join(dest, entry), { recursive: true, force: true });
  }
}

/** What is at `target`: nothing (or an empty folder), the dataset, or a folder that can take it; else throws. */
async function targetState(target: string): Promise<"absent" | "complete" | "merge"> {
  let names: string[];
  try {
    names = await readdir(target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "absent";
    throw new DownloadError(`${target} exists and is not a folder I can read (${code}): left untouched; move it away or choose another --dest`);
  }
  const present = MOVIELENS_FILES.filter((f) => names.includes(f));
  if (present.length === MOVIELENS_FILES.length) return "complete";
  if (present.length > 0) {
    throw new DownloadError(`${target} holds ${present.join(", ")} but not ${MOVIELENS_FILES.filter((f) => !present.includes(f)).join(", ")}: left untouched; move it away or choose another --dest`);
  }
  return names.length === 0 ? "absent" : "merge";
}

/** Moves the staged files to `target`: the whole folder, or file by file beside a user's files, never over one. */
async function publish(staging: string, target: string): Promise<void> {
  const state = await targetState(target);
  if (state === "complete") return; // another run finished first
  if (state === "absent") {
    try {
      await rename(staging, target); // replaces an empty folder only
      return;
    } catch (e) {
      if (!["ENOTEMPTY", "EEXIST"].includes((e as NodeJS.ErrnoException).code!)) throw e;
      return publish(staging, target); // something appeared meanwhile: look again
    }
  }
  for (const f of MOVIELENS_FILES) {
    await link(path.join(staging, f), path.join(target, f)).catch((e: Error) => { // EEXIST rather than overwrite
      throw new DownloadError(`cannot add ${f} to ${target}: ${e.message}`);
    });
  }
}

async function get(url: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new DownloadError(`GET ${url}: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ""}`);
  }
  if (!res.ok || !res.body) throw new DownloadError(`GET ${url}: expected 200, got ${res.status} ${res.statusText}`);
  return res;
}

/** The hex digest in a published .md5 file ("<md5>  <file>" or "MD5 (<file>) = <md5>"). */
async function publishedMd5(url: string): Promise<string> {
  const text = await (await get(url)).text();
  const md5 = /\b[0-9a-f]{32}\b/i.exec(text)?.[0];
  if (!md5) throw new DownloadError(`${url}: expected an md5 hex digest, got "${text.slice(0, 80)}"`);
  return md5.toLowerCase();
}

/** Streams the body into `file`, returning its md5; throws past `max` bytes or if fewer came than Content-Length promised. */
async function fetchTo(url: string, file: string, max: number, onProgress?: (done: number, total: number) => void): Promise<string> {
  const res = await get(url);
  const total = Number(res.headers.get("content-length") ?? 0);
  const tooBig = () => new DownloadError(`${url}: larger than ${max} bytes, the most this set's zip may be`);
  if (total > max) {
    await res.body!.cancel();
    throw tooBig();
  }
  const md5 = createHash("md5");
  let done = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      if (done > max) return callback(tooBig());
      md5.update(chunk);
      onProgress?.(done, total);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), count, createWriteStream(file));
  } catch (e) {
    throw e instanceof DownloadError ? e : new DownloadError(`${url}: download failed after ${done} of ${total || "?"} bytes: ${(e as Error).message}`);
  }
  if (total && done !== total) throw new DownloadError(`${url}: expected ${total} bytes, got ${done}`);
  return md5.digest("hex");
}

/**
 * Extracts the entries `<name>/<file>` this set needs (ZIP_CONTENTS) into `dir/<file>`, each within its
 * size limit; every other entry is skipped unread, so no entry's name is ever used as a path.
 */
async function unzip(zip: string, dir: string, name: Dataset, url: string): Promise<void> {
  const limits = new Map(Object.entries(ZIP_CONTENTS[name].entries).map(([file, max]) => [`${name}/${file}`, { file, max }]));
  const zipfile = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zip, { lazyEntries: true, decodeStrings: false }, (err, z) => (err ? reject(new DownloadError(`${url}: not a readable zip: ${err.message}`)) : resolve(z))));
  await mkdir(dir, { recursive: true });
  const done = new Set<string>();
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (message: string) => reject(new DownloadError(`${url}: ${message}`));
      zipfile.on("error", (e: Error) => fail(e.message));
      zipfile.on("end", resolve);
      zipfile.on("entry", (entry: yauzl.Entry) => {
        const entryName = entry.fileNameRaw.toString("utf8");
        const wanted = limits.get(entryName);
        if (!wanted) return zipfile.readEntry();
        if (done.has(entryName)) return fail(`${entryName} appears twice in the zip`);
        done.add(entryName);
        // yauzl stops a stream that outgrows its declared size (validateEntrySizes), so this bounds what is written
        if (entry.uncompressedSize > wanted.max) return fail(`${entryName} would unzip to ${entry.uncompressedSize} bytes, more than the ${wanted.max} this set's file may have`);
        zipfile.openReadStream(entry, (err, stream) => {
          if (err) return fail(`${entryName}: ${err.message}`);
          pipeline(stream, createWriteStream(path.join(dir, wanted.file)))
            .then(() => zipfile.readEntry(), (e: Error) => fail(`${entryName}: ${e.message}`));
        });
      });
      zipfile.readEntry();
    });
  } finally {
    zipfile.close();
  }
  const missing = [...limits.keys()].filter((e) => !done.has(e));
  if (missing.length) throw new DownloadError(`${url}: expected ${[...limits.keys()].join(", ")} in the zip, missing ${missing.join(", ")}`);
}

const GENRE_FLAGS_AFTER = 5; // u.item: movie id | title | release date | video release date | IMDb URL | flags...

/**
 * Rewrites ml-100k's u.data, u.item (Latin-1) and u.genre in `dir` as ratings.csv and movies.csv in the
 * layout of the other sets: ratings as `4.0`, sorted by user then movie; genres from the flags in
 * u.genre's order, `unknown` dropped and none as `(no genres listed)`; titles in UTF-8.
 */
export async function convertMl100k(dir: string, source = dir): Promise<void> {
  const lines = async (file: string, encoding: BufferEncoding) => (await readFile(path.join(dir, file), encoding))
    .split("\n").map((text, i) => ({ text: text.replace(/\r$/, ""), where: `${source} ${file}:${i + 1}` })).filter((l) => l.text !== "");
  const bad = (where: string, expected: string, text: string) =>
    new DownloadError(`${where}: expected ${expected}, got "${text.length > 80 ? `${text.slice(0, 80)}...` : text}"`);
  const id = /^\d{1,9}$/;

  const genreNames: string[] = [];
  for (const { text, where } of await lines("u.genre", "latin1")) {
    const [genre, index] = text.split("|");
    if (!genre || index !== String(genreNames.length)) throw bad(where, `genre|${genreNames.length}`, text);
    genreNames.push(genre);
  }
  const movies: [number, string, string][] = [];
  for (const { text, where } of await lines("u.item", "latin1")) {
    const fields = text.split("|");
    const flags = fields.slice(GENRE_FLAGS_AFTER);
    if (fields.length !== GENRE_FLAGS_AFTER + genreNames.length || !id.test(fields[0]) || flags.some((f) => f !== "0" && f !== "1")) {
      throw bad(where, `movie id|title|release date|video release date|IMDb URL and ${genreNames.length} genre flags of 0 or 1`, text);
    }
    const genres = genreNames.filter((g, i) => flags[i] === "1" && g !== "unknown");
    movies.push([Number(fields[0]), fields[1], genres.length ? genres.join("|") : NO_GENRES]);
  }
  movies.sort((a, b) => a[0] - b[0]);

  const data = await lines("u.data", "latin1");
  const ratings = data.map(({ text, where }) => {
    const f = text.split("\t");
    if (f.length !== 4 || !id.test(f[0]) || !id.test(f[1]) || !/^[1-5]$/.test(f[2]) || !/^\d{1,12}$/.test(f[3])) {
      throw bad(where, "user id<TAB>item id<TAB>rating 1-5<TAB>timestamp", text);
    }
    return { user: Number(f[0]), movie: Number(f[1]), line: `${f[0]},${f[1]},${f[2]}.0,${f[3]}\n` };
  });
  ratings.sort((a, b) => a.user - b.user || a.movie - b.movie);

  await writeFile(path.join(dir, "ratings.csv"), `userId,movieId,rating,timestamp\n${ratings.map((r) => r.line).join("")}`);
  await writeFile(path.join(dir, "movies.csv"), stringify([["movieId", "title", "genres"], ...movies]));
  for (const file of ["u.data", "u.item", "u.genre"]) await rm(path.join(dir, file));
}

/** `download <dataset> [--dest DIR] [--base-url URL]`. */
export const downloadCommand = new Command("download")
  .description("Download a MovieLens set from GroupLens, check its published md5, and extract ratings.csv and movies.csv into DEST/<name> (ml-100k converted to that layout).")
  .addArgument(new Argument("<dataset>", "which set").choices(DATASETS))
  .option("--dest <dir>", "folder to put <dataset>/ in; files already there are never replaced", "data")
  .option("--base-url <url>", `where the zips are (default $MOVIELENS_BASE_URL, else ${GROUPLENS_URL})`, httpUrl("--base-url"))
  .addHelpText("after", "\nExample: movielens-recsys download ml-latest-small --dest data\nThen:    movielens-recsys train --data data/ml-latest-small")
  .action(async (name: Dataset, o: { dest: string; baseUrl?: string }) => {
    const dir = await downloadMovieLens(name, { dest: o.dest, baseUrl: o.baseUrl, onProgress: progressReporter()(`${name}.zip`, "bytes") });
    console.log(`${name} is in ${dir}`);
  });
