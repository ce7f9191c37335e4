import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";

const reference = path.resolve("..", "shared", "spec", "pipeline.md");

test("docs/pipeline.md is the team's spec plus step 13 (the refit), nothing else changed", { skip: !existsSync(reference) && "needs ../shared/spec/pipeline.md" }, () => {
  const ours = readFileSync("docs/pipeline.md", "utf8")
    .replace(/\n<!--[^]*?-->\n/, "")
    .replace(/\n13\. \*\*Refit for serving\*\*[^]*?\n\n(?=## )/, "\n");
  assert.equal(ours, readFileSync(reference, "utf8"));
});
