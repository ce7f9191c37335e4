import { test } from "node:test";
import assert from "node:assert/strict";
import { FNV_OFFSET, fnv1a32, fnvDecimal, fnvString } from "../lib/hash";

test("fnv1a32 matches the published vectors", () => {
  assert.equal(fnv1a32(""), 2166136261);
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
});

test("fnv1a32 hashes UTF-8 bytes, not UTF-16 code units", () => {
  assert.equal(fnv1a32("é"), 513665217);
});

test("fnvDecimal folds the same bytes as the decimal string", () => {
  for (const n of [0, 7, 10, 99802, 168252, 2147483647, -15]) {
    assert.equal(fnvDecimal(FNV_OFFSET, n), fnvString(FNV_OFFSET, String(n)), `value ${n}`);
  }
});
