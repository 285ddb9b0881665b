/**
 * The child of the `adviseHugePages()` test: a fresh process that, as the
 * mount does, sets the mmap threshold before any large allocation, then
 * allocates and advises a buffer and reports what /proc/self/smaps says of
 * it as one JSON line. In the test runner's own process earlier tests leave
 * large free chunks in the heap, which malloc reuses whatever the
 * threshold, so the check would depend on test order.
 *
 * @module
 */
import { adviseHugePages, mmapLargeAllocations } from "../libc.ts";

interface Mapping {
  start: bigint;
  end: bigint;
  /** The path or pseudo-name ("[heap]"), empty for anonymous memory. */
  name: string;
  flags: string[];
}

/** The mapping of this process that contains `addr` (from /proc/self/smaps). */
function mappingOf(addr: bigint): Mapping | undefined {
  let current: Mapping | undefined;
  for (const line of Deno.readTextFileSync("/proc/self/smaps").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (range) {
      current = {
        start: BigInt(`0x${range[1]}`),
        end: BigInt(`0x${range[2]}`),
        name: range[3],
        flags: [],
      };
    } else if (current && line.startsWith("VmFlags:")) {
      current.flags = line.slice("VmFlags:".length).trim().split(/\s+/);
      if (addr >= current.start && addr < current.end) return current;
    }
  }
  return undefined;
}

const threshold = mmapLargeAllocations(4 * 1024 * 1024);
const small = adviseHugePages(new ArrayBuffer(1024 * 1024));
const size = 16 * 1024 * 1024;
const b = new ArrayBuffer(size);
const advised = adviseHugePages(b);
new Uint8Array(b).fill(1);
const addr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(b))));
// The advice covers the 2 MiB-aligned middle of the buffer, which becomes a mapping of its own.
const huge = 2n * 1024n * 1024n;
const middle = mappingOf((addr + huge - 1n) / huge * huge);
console.log(JSON.stringify({
  threshold,
  small,
  advised,
  middleFlags: middle?.flags ?? null,
  middleSpan: middle ? Number(middle.end - middle.start) : null,
  size,
  startName: mappingOf(addr)?.name ?? null,
}));
