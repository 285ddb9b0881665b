/**
 * Configuration of one mounted file system, and the cache lifetimes it
 * implies. Every TTL the core hands to the kernel or uses internally is
 * derived here, so SEMANTICS.md can state them from one place.
 *
 * @module
 */

/** How long metadata learnt from S3 may be reused. */
export type MetadataTtl =
  | { kind: "minimal" }
  | { kind: "seconds"; s: number }
  | { kind: "indefinite" };

export interface FsConfig {
  bucket: string;
  /** "" or a key prefix ending with "/": the root of the mount. */
  prefix: string;
  allowDelete: boolean;
  allowOverwrite: boolean;
  readOnly: boolean;
  uid: number;
  gid: number;
  /** Permission bits of files (default 0o644). */
  fileMode: number;
  /** Permission bits of directories (default 0o755). */
  dirMode: number;
  metadataTtl: MetadataTtl;
  /** Size of ranged GETs (default 8 MiB). */
  readPartSize: number;
  /** Size of multipart upload parts (default 8 MiB). */
  writePartSize: number;
  /** Memory for read buffers and write parts together, in bytes. */
  maxMemory: number;
  storageClass?: string;
  sse?: string;
  sseKmsKeyId?: string;
  cacheDir?: string;
  maxCacheSize?: number;
}

export const MIB = 1024 * 1024;

/** A configuration with Mountpoint's defaults for everything but the bucket. */
export function defaultFsConfig(bucket: string, overrides: Partial<FsConfig> = {}): FsConfig {
  return {
    bucket,
    prefix: "",
    allowDelete: false,
    allowOverwrite: false,
    readOnly: false,
    uid: 0,
    gid: 0,
    fileMode: 0o644,
    dirMode: 0o755,
    metadataTtl: { kind: "minimal" },
    readPartSize: 8 * MIB,
    writePartSize: 8 * MIB,
    maxMemory: 256 * MIB,
    ...overrides,
  };
}

/** Throws a RangeError naming the first invalid field. */
export function validateFsConfig(c: FsConfig): void {
  if (!c.bucket) throw new RangeError("Invalid file system configuration: bucket is empty");
  if (c.prefix !== "" && !c.prefix.endsWith("/")) {
    throw new RangeError(
      `Invalid file system configuration: prefix "${c.prefix}" must end with "/"`,
    );
  }
  if (c.prefix.startsWith("/")) {
    throw new RangeError(`Invalid file system configuration: prefix "${c.prefix}" starts with "/"`);
  }
  for (const f of ["readPartSize", "writePartSize", "maxMemory"] as const) {
    if (!Number.isInteger(c[f]) || c[f] <= 0) {
      throw new RangeError(`Invalid file system configuration: ${f} "${c[f]}" is not positive`);
    }
  }
  if (c.metadataTtl.kind === "seconds" && !(c.metadataTtl.s >= 0)) {
    throw new RangeError(
      `Invalid file system configuration: metadata TTL "${c.metadataTtl.s}" is negative`,
    );
  }
}

/** The kernel's "forever": a year, small enough for every encoding on the wire. */
const INDEFINITE_TTL_MS = 365 * 24 * 3600 * 1000;

/** With `minimal`, what the kernel may cache and how long our own stat cache lives. */
const MINIMAL_TTL_MS = 1000;

/** Bounded so a `find` over a huge tree cannot grow it without limit. */
export const NEGATIVE_CACHE_MAX = 100_000;

export interface Ttls {
  /** Entry and attribute TTL sent to the kernel. */
  kernelMs: number;
  /** How long a stat confirmed by S3 is reused by getattr (and lookup/open when cached). */
  statMs: number;
  /** Serve lookups and opens from the stat cache while it is valid. */
  serveFromCache: boolean;
  /** Lifetime of a cached ENOENT; 0 disables the negative cache. */
  negativeMs: number;
}

export function ttlsOf(t: MetadataTtl): Ttls {
  switch (t.kind) {
    case "minimal":
      return {
        kernelMs: MINIMAL_TTL_MS,
        statMs: MINIMAL_TTL_MS,
        serveFromCache: false,
        negativeMs: 0,
      };
    case "seconds": {
      const ms = Math.round(t.s * 1000);
      // Zero kernel TTLs cause lookup storms on every readdir; keep a floor.
      const kernelMs = Math.max(ms, MINIMAL_TTL_MS);
      return { kernelMs, statMs: ms, serveFromCache: ms > 0, negativeMs: ms };
    }
    case "indefinite":
      return {
        kernelMs: INDEFINITE_TTL_MS,
        statMs: Number.POSITIVE_INFINITY,
        serveFromCache: true,
        negativeMs: Number.POSITIVE_INFINITY,
      };
  }
}

/**
 * The process's own memory, kept out of the buffers: the Deno runtime, the
 * SDK and the FUSE session are about 85 MiB resident idle (44 MiB of it the
 * binary's text), and four active readers add 100-140 MiB that no budget
 * holds (the part each reader is granted past the budget, response buffers
 * on the Rust side, garbage waiting for a collection). Measured with 4
 * readers: a peak of 250-300 MiB at `maxMemory` 256 MiB, 320-335 MiB at 512
 * (docs/benchmarks.md). Pooled part buffers count inside the read budget.
 */
const RESERVE_FLOOR = 128 * MIB;

/** Memory left for buffers after the reserve (the larger of RESERVE_FLOOR and a quarter). */
function usableMemory(c: FsConfig): number {
  return Math.max(0, c.maxMemory - Math.max(RESERVE_FLOOR, c.maxMemory / 4));
}

/**
 * The part buffers of the files open for writing (half of the usable
 * memory, at least two write parts: one writer's own). Any number of files
 * may be open for writing; their buffers wait for this memory
 * (`write_memory.ts`).
 */
export function writeBudgetBytes(c: FsConfig): number {
  return Math.max(2 * c.writePartSize, Math.floor(usableMemory(c) / 2));
}

/** The read buffers' share (the other half of the usable memory), at least two read parts. */
export function readBudgetBytes(c: FsConfig): number {
  return Math.max(2 * c.readPartSize, Math.floor(usableMemory(c) / 2));
}
