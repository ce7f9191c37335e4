import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_GRID } from "../lib/tune";

const reference = path.resolve("..", "shared", "spec", "pipeline.md");

test("docs/pipeline.md is the team's spec plus step 13 (the refit), nothing else changed", { skip: !existsSync(reference) && "needs ../shared/spec/pipeline.md" }, () => {
  const ours = readFileSync("docs/pipeline.md", "utf8")
    .replace(/\n<!--[^]*?-->\n/, "")
    .replace(/\n13\. \*\*Refit for serving\*\*[^]*?\n\n(?=## )/, "\n");
  assert.equal(ours, readFileSync(reference, "utf8"));
});

test("docs/models.md states tune's ALS grid as lib/tune.ts has it", () => {
  const { factors, regularization, confidence, iterations } = DEFAULT_GRID;
  const models = readFileSync("docs/models.md", "utf8").replace(/\s+/g, " ");
  assert.ok(models.includes(`\`regularization\` ${regularization.join(", ")} x \`confidence\` ${confidence.join(", ")} (${regularization.length * confidence.length * factors.length * iterations.length} fits)`));
  assert.ok(models.includes(`${factors.join(", ")} factors, ${iterations.join(", ")} iterations`));
});
