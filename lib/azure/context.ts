import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import type { ContainerClient } from "@azure/storage-blob";

/** The Dockerfile of the image, relative to the project root (the build context). */
export const DOCKERFILE = "deploy/Dockerfile";
/** A build context larger than this means the .dockerignore lets in more than the build copies. */
const MAX_CONTEXT_BYTES = 100 * 1024 * 1024;

/** The files `docker build -f deploy/Dockerfile .` would send, and a hash of their paths and contents. */
export interface BuildContext {
  root: string;
  dockerfile: string;
  /** Paths relative to root, with `/`, sorted. */
  files: string[];
  bytes: number;
  /** 32 hex digits of SHA-256 over every path and content: a new context gets a new upload folder. */
  hash: string;
}

interface Rule { regex: RegExp; exclude: boolean; literal: string }

/** The project root: the first folder above this module (or the working directory) holding deploy/Dockerfile. */
export function projectRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      if (existsSync(path.join(dir, DOCKERFILE))) return dir;
      if (path.dirname(dir) === dir) break;
    }
  }
  throw new Error(`no ${DOCKERFILE} above ${__dirname} or ${process.cwd()}: run from the project's checkout`);
}

/** A .dockerignore's rules, as Docker reads them: one pattern a line, `#` comments, `!` re-includes, the last match wins. */
export function parseDockerignore(text: string): Rule[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line && !line.startsWith("#")).map((line) => {
    const exclude = !line.startsWith("!");
    const pattern = path.posix.normalize((exclude ? line : line.slice(1)).trim()).replace(/^\/+|\/+$/g, "");
    return { regex: globRegExp(pattern), exclude, literal: pattern.split(/[*?[\\]/)[0] };
  });
}

/** Go's filepath.Match syntax, plus `**` for any number of folders (moby's patternmatcher). */
function globRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      i++;
      if (pattern[i + 1] === "/") { i++; re += "(?:.*/)?"; } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) throw new RangeError(`.dockerignore pattern "${pattern}": unclosed [`);
      re += `[${pattern.slice(i + 1, end)}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** True when the rules exclude `file` (a path relative to the root): a pattern matches it or one of its parent folders. */
export function isExcluded(rules: Rule[], file: string): boolean {
  const parents = file.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"));
  let excluded = false;
  for (const rule of rules) if (parents.some((p) => rule.regex.test(p))) excluded = rule.exclude;
  return excluded;
}

/**
 * The build context of `dockerfile` under `root`, honouring `<dockerfile>.dockerignore` (else `.dockerignore`),
 * the Dockerfile always included. Symbolic links are refused: a blob cannot hold one.
 */
export async function buildContext(root: string = projectRoot(), dockerfile: string = DOCKERFILE): Promise<BuildContext> {
  const ignoreFile = [`${dockerfile}.dockerignore`, ".dockerignore"].map((f) => path.join(root, f)).find((f) => existsSync(f));
  const rules = ignoreFile ? parseDockerignore(await readFile(ignoreFile, "utf8")) : [];
  const reincluded = rules.filter((r) => !r.exclude);
  const files = new Set<string>([dockerfile]);
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      const excluded = isExcluded(rules, rel);
      if (entry.isDirectory()) {
        // An excluded folder is skipped unless a `!` rule could re-include something below it.
        if (!excluded || reincluded.some((r) => r.literal.startsWith(`${rel}/`) || `${rel}/`.startsWith(r.literal))) await walk(rel);
      } else if (!excluded) {
        if (entry.isSymbolicLink()) throw new Error(`${path.join(root, rel)}: the build context holds a symbolic link; exclude it in ${ignoreFile ?? ".dockerignore"}`);
        files.add(rel);
      }
    }
  };
  await walk("");
  const sorted = [...files].sort();
  const hash = createHash("sha256");
  let bytes = 0;
  for (const file of sorted) {
    const stat = await lstat(path.join(root, file));
    if (!stat.isFile()) throw new Error(`${path.join(root, file)}: expected a file in the build context`);
    bytes += stat.size;
    if (bytes > MAX_CONTEXT_BYTES) throw new Error(`the build context under ${root} exceeds ${MAX_CONTEXT_BYTES / 1024 / 1024} MB; ${ignoreFile ?? ".dockerignore"} lets in more than the build copies`);
    hash.update(`${file}\0${stat.size}\0`).update(await readFile(path.join(root, file)));
  }
  return { root, dockerfile, files: sorted, bytes, hash: hash.digest("hex").slice(0, 32) };
}

/** The folder of the datastore's container the context goes to: LocalUpload/<hash>/context/, as Azure ML's own SDK names uploads. */
export const contextFolder = (context: BuildContext) => `LocalUpload/${context.hash}/context/`;

/** Uploads every file of the context under `contextFolder`, one block blob each; the same hash means the same blobs, so a rerun overwrites nothing new. */
export async function uploadContext(container: ContainerClient, context: BuildContext, abortSignal?: AbortSignal): Promise<void> {
  for (const file of context.files) {
    await container.getBlockBlobClient(`${contextFolder(context)}${file}`).uploadFile(path.join(context.root, file), { abortSignal });
  }
}
