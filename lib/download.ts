import { createHash } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Argument, Command } from "commander";
import yauzl from "yauzl";
import { progressReporter } from "./progress";

/** The MovieLens sets `download` knows; each is `<name>.zip` beside `<name>.zip.md5` at the base URL. */
export const DATASETS = ["ml-latest-small", "ml-25m", "ml-32m"] as const;
export type Dataset = (typeof DATASETS)[number];

/** The files `train` needs from a MovieLens folder. */
export const MOVIELENS_FILES = ["ratings.csv", "movies.csv"];

/** Where GroupLens publishes them; $MOVIELENS_BASE_URL or --base-url points elsewhere (a mirror, a test server). */
export const GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/";

export class DownloadError extends Error {
  override name = "DownloadError";
}

export interface DownloadOptions {
  dest?: string;
  baseUrl?: string;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Downloads `<baseUrl><name>.zip`, checks it against the published `<name>.zip.md5`, and unzips it
 * into `<dest>/<name>` through a staging directory renamed into place: a failed or interrupted run
 * leaves no `<dest>/<name>`. An existing `<dest>/<name>` holding ratings.csv and movies.csv is kept.
 */
export async function downloadMovieLens(name: Dataset, options: DownloadOptions = {}): Promise<string> {
  const { dest = "data", onProgress } = options;
  const base = (options.baseUrl ?? process.env.MOVIELENS_BASE_URL ?? GROUPLENS_URL).replace(/\/?$/, "/");
  const target = path.resolve(dest, name);
  if (MOVIELENS_FILES.every((f) => existsSync(path.join(target, f)))) return target;
  const url = `${base}${name}.zip`;
  const expected = await publishedMd5(`${url}.md5`);
  await mkdir(dest, { recursive: true });
  const zip = path.resolve(dest, `.${name}.zip.partial-${process.pid}`);
  const staging = path.resolve(dest, `.${name}.partial-${process.pid}`);
  try {
    const md5 = await fetchTo(url, zip, onProgress);
    if (md5 !== expected) throw new DownloadError(`${url}: checksum mismatch: expected md5 ${expected} (from ${url}.md5), got ${md5}`);
    await unzip(zip, staging, `${name}/`, url);
    const missing = MOVIELENS_FILES.filter((f) => !existsSync(path.join(staging, f)));
    if (missing.length) throw new DownloadError(`${url}: expected ${MOVIELENS_FILES.join(" and ")} in the zip under ${name}/, missing ${missing.join(", ")}`);
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
    return target;
  } finally {
    await rm(zip, { force: true });
    await rm(staging, { recursive: true, force: true });
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

/** Streams the body into `file`, returning its md5; throws if fewer bytes came than Content-Length promised. */
async function fetchTo(url: string, file: string, onProgress?: (done: number, total: number) => void): Promise<string> {
  const res = await get(url);
  const total = Number(res.headers.get("content-length") ?? 0);
  const md5 = createHash("md5");
  let done = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      md5.update(chunk);
      done += chunk.length;
      onProgress?.(done, total);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), count, createWriteStream(file));
  } catch (e) {
    throw new DownloadError(`${url}: download failed after ${done} of ${total || "?"} bytes: ${(e as Error).message}`);
  }
  if (total && done !== total) throw new DownloadError(`${url}: expected ${total} bytes, got ${done}`);
  return md5.digest("hex");
}

/** Extracts the zip's files under `root` into `dir` (yauzl refuses absolute and `..` paths); errors name `url`. */
async function unzip(zip: string, dir: string, root: string, url: string): Promise<void> {
  const zipfile = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zip, { lazyEntries: true }, (err, z) => (err ? reject(new DownloadError(`${url}: not a readable zip: ${err.message}`)) : resolve(z))));
  await mkdir(dir, { recursive: true });
  try {
    await new Promise<void>((resolve, reject) => {
      zipfile.on("error", (e: Error) => reject(new DownloadError(`${url}: ${e.message}`)));
      zipfile.on("end", resolve);
      zipfile.on("entry", (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith("/") || !entry.fileName.startsWith(root)) return zipfile.readEntry();
        const out = path.join(dir, entry.fileName.slice(root.length));
        zipfile.openReadStream(entry, (err, stream) => {
          if (err) return reject(new DownloadError(`${url}: ${entry.fileName}: ${err.message}`));
          mkdir(path.dirname(out), { recursive: true })
            .then(() => pipeline(stream, createWriteStream(out)))
            .then(() => zipfile.readEntry(), (e: Error) => reject(new DownloadError(`${url}: ${entry.fileName}: ${e.message}`)));
        });
      });
      zipfile.readEntry();
    });
  } finally {
    zipfile.close();
  }
}

/** `download <dataset> [--dest DIR] [--base-url URL]`. */
export const downloadCommand = new Command("download")
  .description("Download a MovieLens set from GroupLens, check its published md5, and unzip it into DEST/<name>.")
  .addArgument(new Argument("<dataset>", "which set").choices(DATASETS))
  .option("--dest <dir>", "directory to unzip into", "data")
  .option("--base-url <url>", `where the zips are (default $MOVIELENS_BASE_URL, else ${GROUPLENS_URL})`)
  .addHelpText("after", "\nThen: movielens-recsys train --data data/ml-latest-small")
  .action(async (name: Dataset, o: { dest: string; baseUrl?: string }) => {
    const dir = await downloadMovieLens(name, { dest: o.dest, baseUrl: o.baseUrl, onProgress: progressReporter()(`${name}.zip`, "bytes") });
    console.log(`${name} is in ${dir}`);
  });
