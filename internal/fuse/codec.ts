/**
 * Reading and writing FUSE structs by their layout in structs.ts: the one
 * place that turns a field's name into an offset and its type into a
 * DataView getter or setter.
 *
 * `StructReader` and `StructWriter` are built once at module load from a
 * struct name and a map of JS property → C field; they keep the resolved
 * offsets and accessors in arrays, so reading or writing a struct is a loop
 * over precomputed numbers with no allocation. A field name the struct lacks
 * throws at load, so a typo cannot reach the wire. The writer zeroes every
 * byte it is not given (padding, unused, spare), so a reply never leaks the
 * request bytes that share its buffer.
 *
 * u64 fields travel as JS numbers (see abi.ts): reads are exact below 2^53,
 * writes saturate above it and write negatives as two's complement, which is
 * how the kernel reads the signed times it keeps in u64 fields.
 *
 * @module
 */

import { type Field, FIELD_SIZE, type FieldType, type StructName, STRUCTS } from "./structs.ts";

const TWO32 = 4294967296;

/** Reads a u64 as a number (exact below 2^53). */
export function getU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
}

/** Reads an i64 as a number. */
function getI64(v: DataView, off: number): number {
  return v.getInt32(off + 4, true) >= 0 ? getU64(v, off) : Number(v.getBigInt64(off, true));
}

/** Writes a non-negative integer as u64; negatives as i64 (two's complement). */
export function setU64(v: DataView, off: number, n: number): void {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    const i = Math.floor(n);
    v.setUint32(off, i % TWO32, true);
    v.setUint32(off + 4, Math.floor(i / TWO32), true);
  } else if (n < 0) {
    v.setBigInt64(off, BigInt(Math.floor(n)), true);
  } else if (n > 0) {
    // Beyond 2^53 (or +Infinity): saturate rather than wrap.
    v.setBigUint64(off, n === Infinity ? 0xffffffffffffffffn : BigInt(Math.floor(n)), true);
  } else {
    v.setUint32(off, 0, true); // NaN
    v.setUint32(off + 4, 0, true);
  }
}

type Getter = (v: DataView, at: number) => number;
type Setter = (v: DataView, at: number, n: number) => void;

const GET: Record<FieldType, Getter> = {
  u8: (v, at) => v.getUint8(at),
  u16: (v, at) => v.getUint16(at, true),
  u32: (v, at) => v.getUint32(at, true),
  i32: (v, at) => v.getInt32(at, true),
  u64: getU64,
  i64: getI64,
};

const SET: Record<FieldType, Setter> = {
  u8: (v, at, n) => v.setUint8(at, n),
  u16: (v, at, n) => v.setUint16(at, n, true),
  u32: (v, at, n) => v.setUint32(at, n, true),
  i32: (v, at, n) => v.setInt32(at, n, true),
  u64: setU64,
  i64: setU64,
};

/** The fields of `struct` named `name`, or nested under it (`attr` covers `attr.ino`...). */
function fieldsNamed(struct: StructName, name: string): Field[] {
  const found = STRUCTS[struct].fields.filter((f) =>
    f.name === name || f.name.startsWith(`${name}.`)
  );
  if (found.length === 0) throw new Error(`Unknown field "${name}" in struct "${struct}"`);
  return found;
}

/** The offsets of `names` in `struct` (a nested struct's name gives its start). */
export function offsets<const C extends string>(
  struct: StructName,
  names: readonly C[],
): Readonly<Record<C, number>> {
  const out = {} as Record<C, number>;
  for (const n of names) out[n] = Math.min(...fieldsNamed(struct, n).map((f) => f.offset));
  return out;
}

/** Each property with its C field, which must be one scalar (not an array, not a nested struct). */
function scalars<K extends string>(
  struct: StructName,
  fields: Readonly<Record<K, string>>,
): [K, Field][] {
  return (Object.keys(fields) as K[]).map((key) => {
    const [f, ...more] = fieldsNamed(struct, fields[key]);
    if (more.length > 0 || f!.count !== 1) throw new Error(`Field "${fields[key]}" is not scalar`);
    return [key, f!];
  });
}

/** Reads chosen fields of a struct into properties of an object; each field's type picks its getter. */
export class StructReader<K extends string> {
  readonly #keys: K[] = [];
  readonly #offsets: number[] = [];
  readonly #get: Getter[] = [];

  /** `fields` maps each JS property to its C field. */
  constructor(struct: StructName, fields: Readonly<Record<K, string>>) {
    for (const [key, f] of scalars(struct, fields)) {
      this.#keys.push(key);
      this.#offsets.push(f.offset);
      this.#get.push(GET[f.type]);
    }
  }

  /** Reads the struct that starts at `base` into `out`. */
  read(v: DataView, base: number, out: Record<K, unknown>): void {
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) {
      out[keys[i]!] = this.#get[i]!(v, base + this.#offsets[i]!);
    }
  }
}

/**
 * Writes a struct from an object's properties. Fields named in `byCaller`
 * (times in two fields, nested structs, 64-bit flags split in two) are left
 * to the caller, which finds them in `at`; every other byte is zeroed.
 */
export class StructWriter<K extends string, C extends string = never> {
  /** sizeof(struct). */
  readonly size: number;
  /** Offsets of the fields the caller writes. */
  readonly at: Readonly<Record<C, number>>;
  readonly #keys: K[] = [];
  readonly #offsets: number[] = [];
  readonly #set: Setter[] = [];
  /** Byte ranges nobody writes, as [start, end) pairs. */
  readonly #zero: number[] = [];

  /** `fields` maps each JS property to its C field. */
  constructor(
    struct: StructName,
    fields: Readonly<Record<K, string>>,
    byCaller: readonly C[] = [],
  ) {
    const layout = STRUCTS[struct];
    this.size = layout.size;
    this.at = offsets(struct, byCaller);
    const written = new Set<string>();
    for (const [key, f] of scalars(struct, fields)) {
      this.#keys.push(key);
      this.#offsets.push(f.offset);
      this.#set.push(SET[f.type]);
      written.add(f.name);
    }
    for (const c of byCaller) for (const f of fieldsNamed(struct, c)) written.add(f.name);
    for (const f of layout.fields) {
      if (written.has(f.name)) continue;
      const end = f.offset + FIELD_SIZE[f.type] * f.count;
      const last = this.#zero.length - 1;
      if (last > 0 && this.#zero[last] === f.offset) this.#zero[last] = end;
      else this.#zero.push(f.offset, end);
    }
  }

  /** Writes the struct at `base` (absent properties as 0) and returns its size. */
  write(v: DataView, base: number, src?: { readonly [P in K]?: number }): number {
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) {
      this.#set[i]!(v, base + this.#offsets[i]!, src?.[keys[i]!] ?? 0);
    }
    const zero = this.#zero;
    for (let i = 0; i < zero.length; i += 2) {
      for (let p = base + zero[i]!; p < base + zero[i + 1]!; p++) v.setUint8(p, 0);
    }
    return this.size;
  }
}
