/**
 * One open directory handle: the readdir cookie window over a `DirStream`
 * and how each listed entry is offered to the kernel.
 *
 * Cookies are positions in the listing's name order ("." is 0, ".." is 1,
 * the first entry 2). The kernel may resume at any cookie it was given, so
 * the handle keeps the most recent `DIR_WINDOW` entries and serves earlier
 * cookies from them; a cookie older than the window (or 0) restarts the
 * listing and skips forward. The listing snapshots the directory's local
 * children when it (re)starts.
 *
 * Emission: plain readdir reports the inode number of a name the mount
 * knows, else a fresh number that is not kept; readdirplus goes through the
 * inode table (seeding the stat cache) and counts a lookup reference only
 * for entries the kernel accepts.
 *
 * @module
 */

import { type DirEntry, S_IFDIR, S_IFREG } from "./api.ts";
import { DirStream, type ListedEntry } from "./dir_stream.ts";
import type { Inode, InodeTable, Kind } from "./inode_table.ts";
import type { ObjectClient } from "../s3/object_client.ts";

/** Entries kept per directory handle for re-serving earlier cookies without relisting. */
const DIR_WINDOW = 1024;
/** Cookies 0 and 1 are "." and "..". */
const FIRST_ENTRY_COOKIE = 2;

export interface DirHandleOptions {
  client: ObjectClient;
  bucket: string;
  table: InodeTable;
}

export class DirHandle {
  readonly kind = "dir";
  readonly inode: Inode;
  readonly #o: DirHandleOptions;
  #stream: DirStream | null = null;
  /** The most recent entries produced, for resuming at an earlier cookie. */
  #window: ListedEntry[] = [];
  /** Index (among produced entries) of `#window[0]`. */
  #base = 0;
  #produced = 0;

  constructor(inode: Inode, o: DirHandleOptions) {
    this.inode = inode;
    this.#o = o;
  }

  /** Streams entries from cookie `offset` into `add` until it refuses one or the listing ends. */
  async readdir(
    offset: number,
    plus: boolean,
    add: (e: DirEntry) => boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    const dir = this.inode;
    if (offset === 0) {
      if (!add(this.#dotEntry(".", dir, 1, plus))) return;
      offset = 1;
    }
    if (offset === 1) {
      if (!add(this.#dotEntry("..", dir.parent, 2, plus))) return;
      offset = 2;
    }
    let idx = offset - FIRST_ENTRY_COOKIE;
    if (!this.#stream || idx < this.#base) this.#restart();
    for (;;) {
      let e: ListedEntry | null;
      if (idx < this.#produced) {
        e = this.#window[idx - this.#base]!;
      } else {
        e = await this.#stream!.next(signal);
        if (!e) return;
        this.#window.push(e);
        this.#produced++;
        if (this.#window.length > DIR_WINDOW) {
          this.#window.shift();
          this.#base++;
        }
        if (idx >= this.#produced) continue; // skipping forward to the requested cookie
      }
      if (!this.#emit(e, idx + FIRST_ENTRY_COOKIE + 1, plus, add)) return;
      idx++;
    }
  }

  #restart(): void {
    const local: { name: string; kind: Kind }[] = [];
    for (const c of this.inode.localChildren!.values()) local.push({ name: c.name, kind: c.kind });
    this.#stream = new DirStream({
      client: this.#o.client,
      bucket: this.#o.bucket,
      dirKey: this.inode.key,
      local,
    });
    this.#window = [];
    this.#base = 0;
    this.#produced = 0;
  }

  /** Offers one entry to `add`; returns false when the reply is full. */
  #emit(e: ListedEntry, nextOffset: number, plus: boolean, add: (e: DirEntry) => boolean): boolean {
    const { table } = this.#o;
    const dir = this.inode;
    if (!plus) {
      const ino = table.inoOfListed(dir, e);
      if (ino === null) return true; // a local entry that vanished meanwhile
      return add({ name: e.name, ino, type: e.kind === "dir" ? S_IFDIR : S_IFREG, nextOffset });
    }
    const child = table.fromListing(dir, e);
    if (!child) return true; // a local entry that vanished meanwhile
    const ok = add({
      name: e.name,
      ino: child.ino,
      type: child.kind === "dir" ? S_IFDIR : S_IFREG,
      nextOffset,
      entry: table.entry(child),
    });
    if (ok) child.lookups++;
    else table.maybeDrop(child);
    return ok;
  }

  #dotEntry(name: string, inode: Inode, nextOffset: number, plus: boolean): DirEntry {
    // The kernel takes no reference for "." and "..", so neither do we.
    const e: DirEntry = { name, ino: inode.ino, type: S_IFDIR, nextOffset };
    if (plus) e.entry = this.#o.table.entry(inode);
    return e;
  }
}
