import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { buildContext, isExcluded, parseDockerignore } from "../lib/azure/context";

const ROOT = path.resolve(__dirname, "..", "..");
let tmp: string;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "context-test-"));
});

after(() => rm(tmp, { recursive: true, force: true }));

/** A project folder with these files (contents: their own path). */
async function project(name: string, files: Record<string, string | null>): Promise<string> {
  const root = path.join(tmp, name);
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text ?? file);
  }
  return root;
}

test(".dockerignore as Docker reads it: parent folders match, ! re-includes, the last match wins, ** spans folders", () => {
  const rules = parseDockerignore("# comment\n*\n!package.json\n!lib/\nlib/**/*.test.ts\n/docs\n!docs/keep?.md\n**/secret*\n");
  const excluded = (f: string) => isExcluded(rules, f);
  for (const f of ["README.md", "node_modules/x/index.js", "lib/a.test.ts", "lib/deep/b.test.ts", "lib/secret.key", "docs/a.md", "deploy/Dockerfile"]) assert.ok(excluded(f), f);
  for (const f of ["package.json", "lib/a.ts", "lib/deep/b.ts", "docs/keep1.md"]) assert.ok(!excluded(f), f);
  assert.ok(excluded("docs/keep10.md"), "? is one character");
  assert.ok(!isExcluded(parseDockerignore(""), "anything/at/all"));
});

test("the project's build context is what deploy/Dockerfile copies, plus the Dockerfile: no node_modules, data or notebooks", async () => {
  const context = await buildContext(ROOT);
  assert.ok(context.files.includes("deploy/Dockerfile"));
  // Every top-level COPY source of the Dockerfile (not --from) is in the context.
  const dockerfile = await readFile(path.join(ROOT, "deploy/Dockerfile"), "utf8");
  for (const [, sources] of dockerfile.matchAll(/^COPY (?!.*--from)(.+) \S+$/gm)) {
    for (const source of sources.split(/\s+/).filter((s) => !s.startsWith("--"))) assert.ok(context.files.some((f) => f === source || f.startsWith(source)), source);
  }
  for (const f of context.files) assert.doesNotMatch(f, /^(node_modules|dist|notebooks|test|\.cache|data)\//, f);
  assert.match(context.hash, /^[0-9a-f]{32}$/);
});

test("the context hash follows paths and contents; symbolic links and oversized contexts are refused", async () => {
  const files = { "deploy/Dockerfile": "FROM x\n", "deploy/Dockerfile.dockerignore": "*\n!src/\n", "src/a.ts": null, "other.txt": null };
  const a = await buildContext(await project("a", files));
  assert.deepEqual(a.files, ["deploy/Dockerfile", "src/a.ts"]);
  const same = await buildContext(await project("same", files));
  assert.equal(same.hash, a.hash, "the folder's own location does not count");
  const changed = await buildContext(await project("changed", { ...files, "src/a.ts": "changed" }));
  assert.notEqual(changed.hash, a.hash);
  const { "src/a.ts": _, ...others } = files;
  const renamed = await buildContext(await project("renamed", { ...others, "src/b.ts": "src/a.ts" }));
  assert.deepEqual(renamed.files, ["deploy/Dockerfile", "src/b.ts"]);
  assert.notEqual(renamed.hash, a.hash);

  const linked = await project("linked", files);
  await symlink("/etc/passwd", path.join(linked, "src/passwd"));
  await assert.rejects(buildContext(linked), /linked\/src\/passwd: the build context holds a symbolic link; exclude it in .*Dockerfile\.dockerignore/);
  // Without a .dockerignore beside the Dockerfile, .dockerignore at the root applies.
  const rooted = await project("rooted", { "deploy/Dockerfile": "FROM x\n", ".dockerignore": "big\n", "big": null, "small": null });
  assert.deepEqual((await buildContext(rooted)).files, [".dockerignore", "deploy/Dockerfile", "small"]);
  await truncate(path.join(rooted, "small"), 101 * 1024 * 1024); // sparse: refused from its size, never read
  await assert.rejects(buildContext(rooted), /the build context under .*rooted exceeds 100 MB; .*rooted\/\.dockerignore lets in more than the build copies/);
});
