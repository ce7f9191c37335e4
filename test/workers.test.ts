import { test } from "node:test";
import assert from "node:assert/strict";
import { TASKS } from "../lib/worker";

test("every task a worker thread runs names a function exported by its module (loaded alone in the thread)", () => {
  for (const [name, [module, task]] of Object.entries(TASKS)) {
    assert.equal(typeof (require(`../lib/${module.slice(2)}`) as Record<string, unknown>)[task], "function", name);
  }
});
