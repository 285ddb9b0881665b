/**
 * A directory listing in name order, streamed from ListObjectsV2 pages.
 *
 * S3 lists `a-x` before the common prefix `a/` (because "-" < "/"), yet by
 * name the directory `a` sorts before `a-x`; and a file `a` is shadowed by a
 * directory `a` that only shows up later. So entries wait in a small sorted
 * buffer until the listing has passed every key that could still put
 * something before them (see `blockersOf`). In practice the next key
 * resolves the wait; if the buffer grows past `PROBE_THRESHOLD` (many keys
 * like `a-000001`…), the blocking directory is checked with one LIST of
 * `max-keys=1` instead of buffering further. Memory stays bounded by a page
 * plus that threshold.
 *
 * Local (not yet uploaded) entries from a snapshot are merged in; for one
 * name the winner is: remote directory > local entry > remote file. Names
 * never go backwards: anything that sorts at or before the last emitted name
 * (a duplicate, or a key created behind the cursor during the listing) is
 * dropped, so concurrent changes can neither duplicate nor break a listing.
 *
 * @module
 */

import type { ObjectClient, ObjectInfo } from "../s3/object_client.ts";
import { blockersOf, compareUtf8 as compareKeys, isValidName } from "./names.ts";

const LIST_PAGE_SIZE = 1000;
const PROBE_THRESHOLD = 1000;

export type ListedEntry =
  | { name: string; source: "remote"; kind: "dir" }
  | { name: string; source: "remote"; kind: "file"; info: ObjectInfo }
  | { name: string; source: "local"; kind: "dir" | "file" };

interface Pending {
  entry: ListedEntry;
  blockers: string[];
}

/** Precedence for one name, lowest wins: remote dir, local dir, local file, remote file. */
function rank(e: ListedEntry): number {
  if (e.source === "local") return e.kind === "dir" ? 1 : 2;
  return e.kind === "dir" ? 0 : 3;
}

export interface DirStreamOptions {
  client: ObjectClient;
  bucket: string;
  /** The directory's key prefix ("" or ending with "/"). */
  dirKey: string;
  local: { name: string; kind: "dir" | "file" }[];
  /** Keys per LIST page (`LIST_PAGE_SIZE`); tests list in tiny pages to cross page ends. */
  pageSize?: number;
}

export class DirStream {
  readonly #o: DirStreamOptions;
  /** Sorted by name (UTF-8 order), smallest first. */
  readonly #pending: Pending[] = [];
  readonly #probed = new Set<string>();
  #token: string | undefined;
  #started = false;
  #done = false;
  /** The greatest S3 item (key or common prefix) consumed so far. */
  #cursor = "";
  #last: string | null = null;

  constructor(o: DirStreamOptions) {
    this.#o = o;
    for (const l of o.local) {
      if (!isValidName(l.name)) continue;
      this.#insert({ name: l.name, source: "local", kind: l.kind });
    }
  }

  /** The next entry in name order, or null at the end. */
  async next(signal?: AbortSignal): Promise<ListedEntry | null> {
    for (;;) {
      const top = this.#pending[0];
      if (top && this.#isSafe(top)) {
        const best = this.#popName(top.entry.name);
        if (this.#last !== null && compareKeys(best.name, this.#last) <= 0) continue;
        this.#last = best.name;
        return best;
      }
      if (this.#done) {
        if (!top) return null;
        continue; // unreachable: everything is safe once done
      }
      if (top && this.#pending.length > PROBE_THRESHOLD) {
        await this.#probe(top, signal);
        continue;
      }
      await this.#fetch(signal);
    }
  }

  #isSafe(p: Pending): boolean {
    if (this.#done) return true;
    for (const b of p.blockers) {
      if (!this.#probed.has(b) && compareKeys(this.#cursor, b) < 0) return false;
    }
    return true;
  }

  /** Removes every pending entry named `name` and returns the winner. */
  #popName(name: string): ListedEntry {
    let best = this.#pending.shift()!.entry;
    while (this.#pending.length > 0 && this.#pending[0]!.entry.name === name) {
      const e = this.#pending.shift()!.entry;
      if (rank(e) < rank(best)) best = e;
    }
    return best;
  }

  #insert(entry: ListedEntry): void {
    const blockers = blockersOf(
      this.#o.dirKey,
      entry.name,
      entry.source === "remote" && entry.kind === "dir",
    );
    const p = this.#pending;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(p[mid]!.entry.name, entry.name) <= 0) lo = mid + 1;
      else hi = mid;
    }
    p.splice(lo, 0, { entry, blockers });
  }

  async #fetch(signal?: AbortSignal): Promise<void> {
    if (this.#started && this.#token === undefined) {
      this.#done = true;
      return;
    }
    const { client, bucket, dirKey } = this.#o;
    const page = await client.listObjects(bucket, {
      prefix: dirKey,
      delimiter: "/",
      maxKeys: this.#o.pageSize ?? LIST_PAGE_SIZE,
      continuationToken: this.#token,
      signal,
    });
    this.#started = true;
    this.#token = page.nextContinuationToken;
    for (const info of page.objects) {
      this.#advance(info.key);
      const name = info.key.slice(dirKey.length);
      // The directory's own marker object is not an entry.
      if (name === "" || !isValidName(name)) continue;
      this.#insert({ name, source: "remote", kind: "file", info });
    }
    for (const cp of page.commonPrefixes) {
      this.#advance(cp);
      const name = cp.slice(dirKey.length, -1);
      if (!isValidName(name)) continue;
      this.#insert({ name, source: "remote", kind: "dir" });
    }
    if (this.#token === undefined) this.#done = true;
  }

  #advance(item: string): void {
    if (compareKeys(item, this.#cursor) > 0) this.#cursor = item;
  }

  /** Resolves the first unresolved blocker of `p` with a one-key LIST. */
  async #probe(p: Pending, signal?: AbortSignal): Promise<void> {
    const b = p.blockers.find((x) => !this.#probed.has(x) && compareKeys(this.#cursor, x) < 0);
    if (b === undefined) return;
    const { client, bucket, dirKey } = this.#o;
    const page = await client.listObjects(bucket, { prefix: b, maxKeys: 1, signal });
    this.#probed.add(b);
    if (page.objects.length > 0 || page.commonPrefixes.length > 0) {
      const name = b.slice(dirKey.length, -1);
      if (isValidName(name)) this.#insert({ name, source: "remote", kind: "dir" });
    }
  }
}
