// Candidates are (id, value) pairs in parallel arrays, ranked by value descending, then id ascending.

/** Moves the best k of positions [lo, hi) to [lo, lo + k), in no particular order (quickselect). */
export function selectBest(ids: Int32Array, values: Float64Array, lo: number, hi: number, k: number): void {
  const target = lo + k - 1;
  let left = lo, right = hi - 1;
  while (left < right) {
    const mid = (left + right) >> 1, pv = values[mid], pid = ids[mid];
    let i = left, j = right;
    while (i <= j) {
      while (values[i] > pv || (values[i] === pv && ids[i] < pid)) i++;
      while (values[j] < pv || (values[j] === pv && ids[j] > pid)) j--;
      if (i <= j) swap(ids, values, i++, j--);
    }
    if (target <= j) right = j;
    else if (target >= i) left = i;
    else break;
  }
}

/** Sorts positions [lo, hi) best first (quicksort, insertion sort for short runs). */
export function sortBest(ids: Int32Array, values: Float64Array, lo: number, hi: number): void {
  while (hi - lo > 16) {
    const mid = (lo + hi - 1) >> 1, pv = values[mid], pid = ids[mid];
    let i = lo, j = hi - 1;
    while (i <= j) {
      while (values[i] > pv || (values[i] === pv && ids[i] < pid)) i++;
      while (values[j] < pv || (values[j] === pv && ids[j] > pid)) j--;
      if (i <= j) swap(ids, values, i++, j--);
    }
    // recurse into the shorter side, loop on the longer
    if (j - lo < hi - i) {
      sortBest(ids, values, lo, j + 1);
      lo = i;
    } else {
      sortBest(ids, values, i, hi);
      hi = j + 1;
    }
  }
  for (let i = lo + 1; i < hi; i++) {
    const id = ids[i], v = values[i];
    let j = i - 1;
    for (; j >= lo && (values[j] < v || (values[j] === v && ids[j] > id)); j--) {
      ids[j + 1] = ids[j];
      values[j + 1] = values[j];
    }
    ids[j + 1] = id;
    values[j + 1] = v;
  }
}

/**
 * The best `k` of the first `count` candidates, best first, written to outIds/outValues; returns how
 * many. Reorders ids and values.
 */
export function topK(ids: Int32Array, values: Float64Array, count: number, k: number, outIds: Int32Array, outValues: Float64Array): number {
  const got = Math.min(k, count);
  selectBest(ids, values, 0, count, got);
  sortBest(ids, values, 0, got);
  outIds.set(ids.subarray(0, got));
  outValues.set(values.subarray(0, got));
  return got;
}

function swap(ids: Int32Array, values: Float64Array, i: number, j: number): void {
  const id = ids[i]; ids[i] = ids[j]; ids[j] = id;
  const v = values[i]; values[i] = values[j]; values[j] = v;
}
