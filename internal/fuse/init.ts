/**
 * INIT negotiation: what the session offers the kernel and what it settles
 * on.
 *
 * Versions. A kernel with a newer major is told ours and asks again; one
 * older than 7.23 (the first with the reply sizes we send) is refused with
 * EPROTO. Otherwise the connection speaks min(kernel minor, ours); see abi.ts
 * for why that is safe.
 *
 * Flags. We ask for ASYNC_READ (parallel reads of one file), ATOMIC_O_TRUNC
 * (O_TRUNC comes in OPEN, not as a separate truncate), BIG_WRITES and
 * MAX_PAGES (writes and reads of max_write bytes, 1 MiB by default),
 * AUTO_INVAL_DATA (the kernel drops cached pages when mtime or size change),
 * PARALLEL_DIROPS (lookups and readdirs of one directory in parallel),
 * ABORT_ERROR (an aborted
 * connection reads ECONNABORTED, not ENODEV), READDIRPLUS as configured and,
 * on request only, ASYNC_DIO (it reorders O_DIRECT writes). The result is
 * what both sides set. WRITEBACK_CACHE, locks, splice and everything that
 * adds wire extensions are never asked for.
 *
 * Sizes. max_write is at least one page; max_pages follows from it;
 * max_readahead is the smaller of the kernel's offer and ours.
 *
 * @module
 */

import {
  FUSE_KERNEL_VERSION,
  FUSE_MIN_KERNEL_MINOR,
  FUSE_OUR_MINOR,
  InitFlag,
  initFlagNames,
} from "./abi.ts";
import type { InitOut } from "./reply.ts";
import type { InitRequest } from "./request.ts";

export type ReaddirplusMode = "off" | "auto" | "always";

export interface InitOptions {
  /** Largest WRITE the kernel may send (init_out.max_write). Default 1 MiB. */
  maxWrite?: number;
  /** Upper bound for init_out.max_readahead (the kernel's offer wins if smaller). Default 1 MiB. */
  maxReadahead?: number;
  /** Kernel background request limit (readahead, async I/O). Default 64. */
  maxBackground?: number;
  /** Background requests at which the kernel marks the bdi congested. Default 48. */
  congestionThreshold?: number;
  /** Timestamp granularity in ns. Default 1. */
  timeGran?: number;
  /** READDIRPLUS use: "auto" lets the kernel pick per listing (default). */
  readdirplus?: ReaddirplusMode;
  /** Negotiate ASYNC_DIO (parallel requests for one large O_DIRECT call). Default false: it reorders writes. */
  asyncDio?: boolean;
}

/** What INIT settled on, for logs, tests and benchmarks. */
export interface Negotiated {
  major: number;
  minor: number;
  kernelMinor: number;
  flags: bigint;
  flagNames: string[];
  maxWrite: number;
  maxReadahead: number;
  maxPages: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
}

/** What the session offers, with every default applied. */
export interface InitOffer {
  readonly maxWrite: number;
  readonly maxReadahead: number;
  readonly maxBackground: number;
  readonly congestionThreshold: number;
  readonly timeGran: number;
  readonly flags: bigint;
}

/** The answer to one INIT. */
export type InitAnswer =
  /** The kernel's major is newer: send `out` (our version) and wait for another INIT. */
  | { readonly kind: "newer"; readonly out: InitOut }
  /** The kernel is older than `required`: answer EPROTO. */
  | { readonly kind: "too_old"; readonly required: string }
  | { readonly kind: "accepted"; readonly out: InitOut; readonly negotiated: Negotiated };

const PAGE_SIZE = 4096;
const MIB = 1024 * 1024;

/** The offer made from the session options. */
export function initOffer(o: InitOptions): InitOffer {
  let flags = InitFlag.ASYNC_READ! | InitFlag.ATOMIC_O_TRUNC! | InitFlag.BIG_WRITES! |
    InitFlag.AUTO_INVAL_DATA! | InitFlag.PARALLEL_DIROPS! | InitFlag.ABORT_ERROR! |
    InitFlag.MAX_PAGES!;
  const plus = o.readdirplus ?? "auto";
  if (plus !== "off") flags |= InitFlag.DO_READDIRPLUS!;
  if (plus === "auto") flags |= InitFlag.READDIRPLUS_AUTO!;
  if (o.asyncDio) flags |= InitFlag.ASYNC_DIO!;
  // Bits 32..63 travel in flags2, which the kernel reads only with INIT_EXT.
  if (flags >> 32n) flags |= InitFlag.INIT_EXT!;
  return {
    maxWrite: Math.max(PAGE_SIZE, o.maxWrite ?? MIB),
    maxReadahead: o.maxReadahead ?? MIB,
    maxBackground: o.maxBackground ?? 64,
    congestionThreshold: o.congestionThreshold ?? 48,
    timeGran: o.timeGran ?? 1,
    flags,
  };
}

/** The answer to the kernel's INIT. */
export function negotiate(offer: InitOffer, req: InitRequest): InitAnswer {
  if (req.major > FUSE_KERNEL_VERSION) {
    return {
      kind: "newer",
      out: {
        major: FUSE_KERNEL_VERSION,
        minor: FUSE_OUR_MINOR,
        maxReadahead: 0,
        flags: 0n,
        maxBackground: 0,
        congestionThreshold: 0,
        maxWrite: 0,
        timeGran: 0,
        maxPages: 0,
      },
    };
  }
  if (req.major < FUSE_KERNEL_VERSION || req.minor < FUSE_MIN_KERNEL_MINOR) {
    return { kind: "too_old", required: `${FUSE_KERNEL_VERSION}.${FUSE_MIN_KERNEL_MINOR}` };
  }
  const flags = offer.flags & req.flags;
  const n: Negotiated = {
    major: FUSE_KERNEL_VERSION,
    minor: Math.min(req.minor, FUSE_OUR_MINOR),
    kernelMinor: req.minor,
    flags,
    flagNames: initFlagNames(flags),
    maxWrite: offer.maxWrite,
    maxReadahead: Math.min(req.maxReadahead, offer.maxReadahead),
    maxPages: Math.min(0xffff, Math.ceil(offer.maxWrite / PAGE_SIZE)),
    maxBackground: offer.maxBackground,
    congestionThreshold: offer.congestionThreshold,
    timeGran: offer.timeGran,
  };
  return {
    kind: "accepted",
    negotiated: n,
    out: {
      major: n.major,
      minor: FUSE_OUR_MINOR,
      maxReadahead: n.maxReadahead,
      flags,
      maxBackground: n.maxBackground,
      congestionThreshold: n.congestionThreshold,
      maxWrite: n.maxWrite,
      timeGran: n.timeGran,
      maxPages: n.maxPages,
    },
  };
}

/** `n` as plain JSON values (the flags as hex), for a successor to resume with. */
export function negotiatedToJson(n: Negotiated): Record<string, string | number | string[]> {
  return { ...n, flags: `0x${n.flags.toString(16)}` };
}

/** The inverse of `negotiatedToJson`; throws naming the first field that is missing or wrong. */
export function negotiatedFromJson(j: Record<string, unknown>): Negotiated {
  const num = (k: string): number => {
    const v = j[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new Error(`Negotiated FUSE values: "${k}" is not a non-negative integer`);
    }
    return v;
  };
  if (typeof j.flags !== "string" || !/^0x[0-9a-f]+$/.test(j.flags)) {
    throw new Error(`Negotiated FUSE values: "flags" is not a hex string`);
  }
  const flags = BigInt(j.flags);
  return {
    major: num("major"),
    minor: num("minor"),
    kernelMinor: num("kernelMinor"),
    flags,
    flagNames: initFlagNames(flags),
    maxWrite: num("maxWrite"),
    maxReadahead: num("maxReadahead"),
    maxPages: num("maxPages"),
    maxBackground: num("maxBackground"),
    congestionThreshold: num("congestionThreshold"),
    timeGran: num("timeGran"),
  };
}
