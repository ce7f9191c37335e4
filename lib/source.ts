import path from "node:path";
import { describeLocation, fetchMovieLensBlobs, isBlobLocation, parseBlobLocation } from "./blob";
import { type Preset, syntheticDir } from "./synthetic";

/** Where a command's data comes from: `--data DIR` or a Blob location (downloaded to the cache first), or a synthetic preset (default `small`). */
export async function resolveSource(o: { data?: string; synthetic?: string }): Promise<{ dir: string; source: string }> {
  if (o.data !== undefined && isBlobLocation(o.data)) {
    return { dir: await fetchMovieLensBlobs(o.data), source: describeLocation(parseBlobLocation(o.data)) };
  }
  if (o.data !== undefined) return { dir: path.resolve(o.data), source: o.data };
  const preset = (o.synthetic ?? "small") as Preset;
  return { dir: await syntheticDir(preset, 42, (line) => console.log(line)), source: `synthetic:${preset}` };
}
