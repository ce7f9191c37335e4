/**
 * Selects the best `k` of `count` candidates (`ids[i]` scored `values[i]`): value descending,
 * ties by id ascending. Writes them in that order to outIds/outValues; returns how many.
 * `heap` is scratch space of at least k entries.
 */
export function topK(
  ids: Int32Array, values: Float64Array, count: number, k: number,
  outIds: Int32Array, outValues: Float64Array, heap: Int32Array,
): number {
  // Min-heap of candidate positions, worst at the root.
  const worse = (a: number, b: number) => values[a] < values[b] || (values[a] === values[b] && ids[a] > ids[b]);
  const siftDown = (i: number, size: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < size && worse(heap[l], heap[w])) w = l;
      if (r < size && worse(heap[r], heap[w])) w = r;
      if (w === i) return;
      const t = heap[i]; heap[i] = heap[w]; heap[w] = t;
      i = w;
    }
  };
  let size = 0;
  for (let i = 0; i < count; i++) {
    if (size < k) {
      let j = size++;
      heap[j] = i;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (!worse(heap[j], heap[parent])) break;
        const t = heap[j]; heap[j] = heap[parent]; heap[parent] = t;
        j = parent;
      }
    } else if (worse(heap[0], i)) {
      heap[0] = i;
      siftDown(0, size);
    }
  }
  const selected = size;
  while (size > 0) {
    const best = heap[0];
    outIds[size - 1] = ids[best];
    outValues[size - 1] = values[best];
    heap[0] = heap[--size];
    siftDown(0, size);
  }
  return selected;
}
