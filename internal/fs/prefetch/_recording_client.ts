/**
 * Test double for the prefetch tests: the in-memory client, plus a record of
 * every ranged GET, a count of GETs in flight, optional latency, and a gate
 * that parks GETs until the test lets them go.
 *
 * @module
 */

import assert from "node:assert/strict";
import { MemoryObjectClient } from "../../s3/memory_object_client.ts";
import { type GetOptions, type GetResult, S3Error } from "../../s3/object_client.ts";

export interface RecordedGet {
  key: string;
  start: number;
  end: number;
  ifMatch?: string;
  aborted: boolean;
}

export class RecordingClient extends MemoryObjectClient {
  readonly gets: RecordedGet[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Milliseconds each GET takes (a timer), 0 for a microtask. */
  delayMs = 0;
  #held = false;
  #parked: (() => void)[] = [];

  /** Parks every GET from now on until `release()`. */
  hold(): void {
    this.#held = true;
  }

  /** Lets parked GETs go (all of them, or the first `n`); `hold()` stays in force for all. */
  release(n = Infinity): void {
    if (n === Infinity) this.#held = false;
    const go = this.#parked.splice(0, n);
    for (const f of go) f();
  }

  get parked(): number {
    return this.#parked.length;
  }

  override async getObject(bucket: string, key: string, opts: GetOptions = {}): Promise<GetResult> {
    const rec: RecordedGet = {
      key,
      start: opts.range?.start ?? 0,
      end: opts.range?.end ?? Infinity,
      aborted: false,
    };
    if (opts.ifMatch !== undefined) rec.ifMatch = opts.ifMatch;
    this.gets.push(rec);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.#held) await this.#park(opts.signal);
      if (this.delayMs > 0) await delay(this.delayMs, opts.signal);
      return await super.getObject(bucket, key, opts);
    } catch (err) {
      if (opts.signal?.aborted) rec.aborted = true;
      throw err;
    } finally {
      this.inFlight--;
    }
  }

  #park(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const go = () => resolve();
      this.#parked.push(go);
      signal?.addEventListener("abort", () => {
        const i = this.#parked.indexOf(go);
        if (i >= 0) this.#parked.splice(i, 1);
        reject(new S3Error("Aborted", "Request aborted"));
      }, { once: true });
    });
  }
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(new S3Error("Aborted", "Request aborted"));
    }, { once: true });
  });
}

/** Deterministic, position-dependent bytes, so misplaced data is detected. */
export function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Lets pending microtasks and timers run. */
export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Compares bytes, reporting the first difference (deepEqual's diff of large arrays takes forever). */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what = "bytes"): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: first difference at byte ${i}`);
  }
}
