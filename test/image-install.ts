/**
 * A --require hook that shows a process only the image's install: a package that install leaves out
 * (dev or optional in package-lock.json) cannot be found, as in the image.
 */
import { readFileSync, realpathSync } from "node:fs";
import Module from "node:module";
import path from "node:path";

type Entry = { dev?: boolean; optional?: boolean; devOptional?: boolean };
const root = path.join(__dirname, "..", "..");
const packages: Record<string, Entry> = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")).packages;
// node_modules may be a symlink (a worktree's); files resolve to their real paths
const top = path.dirname(realpathSync(path.join(root, "node_modules")));
const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const resolve = loader._resolveFilename;
loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
  const file = resolve.call(this, request, ...rest);
  const key = /^(node_modules\/(@[^/]+\/)?[^/]+\/)+/.exec(path.relative(top, file))?.[0].slice(0, -1);
  const entry = key === undefined ? undefined : packages[key];
  if (key !== undefined && (!entry || entry.dev || entry.optional || entry.devOptional)) {
    throw Object.assign(new Error(`Cannot find module '${request}' (${key} is not in the image's install)`), { code: "MODULE_NOT_FOUND" });
  }
  return file;
};
