/**
 * What both tables of `scripts/bench` measure with (`bench.ts` against the
 * raw client, `bench_peers.ts` against the peers): shell steps, dropping the
 * page cache, medians, a process's memory from /proc, and the time to the
 * first byte of a file through a mount.
 *
 * @module
 */

const dec = new TextDecoder();

/** Runs `script` with sh; its stdout, or an error with its stderr. */
export async function sh(script: string): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`Benchmark step "${script}" failed: ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

/** Page cache, dentries and inodes: the next read goes to the file system. */
export async function dropCaches(): Promise<void> {
  await sh("sync; echo 3 > /proc/sys/vm/drop_caches");
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** A field of /proc/<pid>/status in bytes (VmHWM: peak resident, VmRSS: resident now). */
export function vmStatus(pid: number, field: "VmHWM" | "VmRSS"): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1];
  return kb ? Number(kb) * 1024 : NaN;
}

/** `runs` times: `before()`, then open `path` and read 1 byte; the milliseconds of each. */
export async function firstByteTimes(
  path: string,
  runs: number,
  before: () => Promise<unknown>,
): Promise<number[]> {
  const times: number[] = [];
  const buf = new Uint8Array(1);
  for (let i = 0; i < runs; i++) {
    await before();
    const t = performance.now();
    const f = await Deno.open(path);
    try {
      await f.read(buf);
    } finally {
      f.close();
    }
    times.push(performance.now() - t);
  }
  return times;
}
