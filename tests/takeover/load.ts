/**
 * The workload of the takeover tests: a reader that streams a file with one
 * open handle, a lister in a second process, and their errors by errno
 * name, so that a test can say which calls failed and how often.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { errnoName, MIB } from "../mount/harness.ts";

/** Polls `check` every 20 ms for up to 30 s; resolves with the time it took. */
export async function waitFor(check: () => Promise<boolean>, what: string): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 30_000) {
    if (await check().catch(() => false)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Reads `path` to the end with one open handle, retrying a failed read at the same offset. */
export async function streamRead(
  path: string,
  onProgress: (offset: number) => void,
): Promise<{ sha256: string; errors: string[] }> {
  const f = await Deno.open(path);
  const buf = new Uint8Array(MIB);
  const hash = createHash("sha256");
  const errors: string[] = [];
  let offset = 0;
  try {
    for (;;) {
      let n: number | null;
      try {
        n = await f.read(buf);
      } catch (err) {
        errors.push(errnoName(err));
        if (errors.length > 5) throw err;
        await f.seek(offset, Deno.SeekMode.Start);
        continue;
      }
      if (n === null) break;
      hash.update(buf.subarray(0, n));
      offset += n;
      onProgress(offset);
    }
  } finally {
    f.close();
  }
  return { sha256: hash.digest("hex"), errors };
}

/** The errno names `ls` reports, by the strerror text it prints. */
const STRERROR: Record<string, string> = {
  "Software caused connection abort": "ECONNABORTED",
  "Transport endpoint is not connected": "ENOTCONN",
  "Input/output error": "EIO",
};

/**
 * A second process listing `dir` in a loop (`ls`, one run after another)
 * until `stop()`; returns the errno name of every failed listing.
 */
export function listLoop(dir: string): { stop(): Promise<{ lists: number; errors: string[] }> } {
  let running = true;
  let lists = 0;
  const errors: string[] = [];
  const done = (async () => {
    while (running) {
      const out = await new Deno.Command("ls", { args: ["-1", dir], stdout: "null" }).output();
      if (out.code === 0) lists++;
      else {
        const text = new TextDecoder().decode(out.stderr);
        const known = Object.keys(STRERROR).find((m) => text.includes(m));
        errors.push(known ? STRERROR[known] : text.trim());
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return { lists, errors };
    },
  };
}

export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  return data;
}
