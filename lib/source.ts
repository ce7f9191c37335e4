import path from "node:path";
import { type Preset, syntheticDir } from "./synthetic";

/** Where a command's data comes from: `--data DIR`, or a synthetic preset (default `small`). */
export async function resolveSource(o: { data?: string; synthetic?: string }): Promise<{ dir: string; source: string }> {
  if (o.data !== undefined) return { dir: path.resolve(o.data), source: o.data };
  const preset = (o.synthetic ?? "small") as Preset;
  return { dir: await syntheticDir(preset, 42, (line) => console.log(line)), source: `synthetic:${preset}` };
}
