import { stat } from "node:fs/promises";
import path from "node:path";
import { describeLocation, fetchMovieLensBlobs, isBlobLocation, parseBlobLocation } from "./blob";
import { MOVIELENS_FILES } from "./download";
import { type Preset, syntheticDir } from "./synthetic";

export class SourceError extends Error {
  override name = "SourceError";
}

/**
 * Where a command's data comes from: `--data DIR` (checked to hold the MovieLens files) or a Blob
 * location (downloaded to the cache first), or a synthetic preset (default `small`, generated once).
 */
export async function resolveSource(o: { data?: string; synthetic?: string }, log: (line: string) => void = console.log): Promise<{ dir: string; source: string }> {
  if (o.data !== undefined && isBlobLocation(o.data)) {
    return { dir: await fetchMovieLensBlobs(o.data), source: describeLocation(parseBlobLocation(o.data)) };
  }
  if (o.data !== undefined) return { dir: await checkDataDir(o.data), source: o.data };
  const preset = (o.synthetic ?? "small") as Preset;
  return { dir: await syntheticDir(preset, 42, log), source: `synthetic:${preset}` };
}

/** Checks `--data` before any work: a local folder holds the MovieLens files, a Blob location parses. */
export async function checkSource(o: { data?: string }): Promise<void> {
  if (o.data === undefined) return;
  if (isBlobLocation(o.data)) parseBlobLocation(o.data);
  else await checkDataDir(o.data);
}

/** The absolute path of `data` once it is a folder holding ratings.csv and movies.csv; else a SourceError saying what is wrong. */
async function checkDataDir(data: string): Promise<string> {
  const dir = path.resolve(data);
  const hint = "a MovieLens folder holds ratings.csv and movies.csv; get one with: movielens-recsys download ml-latest-small --dest data";
  const kind = (p: string) => stat(p).then((s) => (s.isDirectory() ? "folder" : s.isFile() ? "file" : "other"), () => "missing");
  const found = await kind(dir);
  if (found !== "folder") throw new SourceError(`--data ${data}: ${found === "missing" ? "no such folder" : "not a folder"} (${hint})`);
  for (const file of MOVIELENS_FILES) {
    const f = await kind(path.join(dir, file));
    if (f !== "file") throw new SourceError(`--data ${data}: ${f === "missing" ? `no ${file} in this folder` : `${file} is not a file`} (${hint})`);
  }
  return dir;
}
