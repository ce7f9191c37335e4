/** 32-bit FNV-1a (spec, "fnv1a32"): the hash behind sampling and the split. */
export const FNV_OFFSET = 2166136261;
export const FNV_PRIME = 16777619;

/** Folds the UTF-8 bytes of `text` into the running hash `h`. */
export function fnvString(h: number, text: string): number {
  for (const byte of Buffer.from(text, "utf8")) h = Math.imul(h ^ byte, FNV_PRIME) >>> 0;
  return h;
}

const digits = new Uint8Array(24);

/** Folds the plain decimal form of integer `value` into `h`, as fnvString(h, String(value)) but without allocating. */
export function fnvDecimal(h: number, value: number): number {
  if (value < 0) {
    h = Math.imul(h ^ 45, FNV_PRIME) >>> 0; // "-"
    value = -value;
  }
  let len = 0;
  if (value <= 0x7fffffff) {
    // int32 arithmetic: no float division for the ids we see
    do {
      digits[len++] = 48 + (value % 10);
      value = (value / 10) | 0;
    } while (value > 0);
  } else {
    do {
      digits[len++] = 48 + (value % 10);
      value = Math.floor(value / 10);
    } while (value > 0);
  }
  while (len > 0) h = Math.imul(h ^ digits[--len], FNV_PRIME) >>> 0;
  return h;
}

export function fnv1a32(text: string): number {
  return fnvString(FNV_OFFSET, text);
}
