/**
 * The inode table of `S3FileSystem`: every inode the mount holds, each
 * directory's children, and how what S3 says about a name changes them.
 *
 * - An inode lives in the table while the kernel holds lookup references,
 *   while it is open, or while it carries local state (a `mkdir` not yet
 *   persisted, a file being written, or a directory above one of those);
 *   otherwise it is dropped at once, so memory follows what the kernel
 *   holds. Inode numbers only grow, so none is ever reused.
 * - Each directory maps names to inodes (`children`, what the name answers
 *   with now) and keeps its children with local state apart (`localChildren`,
 *   keyed by kind and name), so a file being written that a remote directory
 *   shadows is still found when the directory goes away, and "does this
 *   directory exist only locally" is O(1) and propagates upwards.
 * - Remote answers (a lookup's HEAD + LIST, or a listing entry) are applied
 *   synchronously against current state with SEMANTICS.md's precedence:
 *   remote directory > local state > remote file. A name whose kind changes
 *   gets a new inode; the old one is detached and lingers until forgotten.
 * - Failed lookups are remembered in a bounded negative cache when the
 *   metadata TTL allows it. Whatever the TTL, the last misses are also
 *   remembered for a moment (`RECENT_MISS_MS`), once each, for the create
 *   that follows them: the kernel sends LOOKUP and then CREATE or MKDIR for
 *   one `open(O_CREAT)` or `mkdir`, and asking S3 twice in a row adds a round
 *   trip to every new file without making it safer, since the upload's
 *   `If-None-Match: *` refuses a key created meanwhile (SEMANTICS.md S15).
 *   Likewise a file's stat that a lookup just got from S3 serves the next
 *   open, once, for `RECENT_HIT_MS` (`openableUntil`), since the kernel sends
 *   LOOKUP and then OPEN for one `open()`; the read handle then re-pins if
 *   the object changed (file_handle.ts).
 *
 * @module
 */

import { type Attr, type Entry, Errno, fail, type Ino, ROOT_INO, S_IFDIR, S_IFREG } from "./api.ts";
import { type FsConfig, NEGATIVE_CACHE_MAX, type Ttls } from "./config.ts";
import type { ListedEntry } from "./dir_stream.ts";
import type { Upload } from "./upload.ts";
import type { ObjectClient, ObjectInfo } from "../s3/object_client.ts";

/** How long a create may rely on the lookup miss just before it. */
export const RECENT_MISS_MS = 1000;
/** How long an open may rely on the stat the lookup just before it got from S3. */
export const RECENT_HIT_MS = 250;
/** Recent misses remembered at most (one per create in progress is enough). */
const RECENT_MISS_MAX = 1024;

export type Kind = "file" | "dir";

export interface Inode {
  readonly ino: Ino;
  readonly kind: Kind;
  /** The root is its own parent. */
  readonly parent: Inode;
  readonly name: string;
  /** Files: the object key. Directories: the key prefix, ending with "/" (root: the mount prefix). */
  readonly key: string;
  lookups: number;
  opens: number;
  size: number;
  etag: string | undefined;
  mtimeMs: number;
  /** Stat confirmed by S3 until this time (ms since epoch). */
  validUntil: number;
  /** Until when the next open may use the stat a lookup just confirmed instead of its own HEAD. */
  openableUntil: number;
  /** "file": created by mknod, not yet uploaded; "dir": created by mkdir, not yet persisted. */
  local: "none" | "file" | "dir";
  /** The active writer, for new files and overwrites alike. */
  upload: Upload | null;
  /** Whether the parent's name maps to this inode. */
  attached: boolean;
  children: Map<string, Inode> | null;
  /** Children with local state, keyed by `localKey()` (directories only). */
  localChildren: Map<string, Inode> | null;
}

/** What S3 says is behind one name. */
type Remote = null | { kind: "dir" } | { kind: "file"; info: ObjectInfo };

/** Local directories and files of one name may coexist (a dir always wins). */
function localKey(kind: Kind, name: string): string {
  return (kind === "dir" ? "d:" : "f:") + name;
}

/** Whether `i` holds state that exists only in this mount. */
export function isLocal(i: Inode): boolean {
  return i.local !== "none" || i.upload !== null || (i.localChildren?.size ?? 0) > 0;
}

export interface InodeTableOptions {
  client: ObjectClient;
  config: FsConfig;
  ttl: Ttls;
}

export class InodeTable {
  readonly root: Inode;
  readonly #client: ObjectClient;
  readonly #c: FsConfig;
  readonly #ttl: Ttls;
  readonly #inodes = new Map<Ino, Inode>();
  readonly #negative = new Map<string, number>();
  readonly #recentMiss = new Map<string, number>();
  readonly #mountTimeMs = Date.now();
  #nextIno = ROOT_INO + 1;

  constructor(o: InodeTableOptions) {
    this.#client = o.client;
    this.#c = o.config;
    this.#ttl = o.ttl;
    const root = {
      ino: ROOT_INO,
      kind: "dir",
      name: "",
      key: o.config.prefix,
      lookups: 1,
      opens: 0,
      size: 0,
      etag: undefined,
      mtimeMs: this.#mountTimeMs,
      validUntil: Number.POSITIVE_INFINITY,
      openableUntil: 0,
      local: "none",
      upload: null,
      attached: true,
      children: new Map(),
      localChildren: new Map(),
    } as Omit<Inode, "parent"> as Inode;
    (root as { parent: Inode }).parent = root;
    this.root = root;
    this.#inodes.set(ROOT_INO, root);
  }

  /** Inodes held in memory: what the memory bound of SEMANTICS.md is about. */
  get size(): number {
    return this.#inodes.size;
  }

  find(ino: Ino): Inode | undefined {
    return this.#inodes.get(ino);
  }

  /** The inode numbered `ino`, or ENOENT. */
  get(ino: Ino): Inode {
    const inode = this.#inodes.get(ino);
    if (!inode) fail(Errno.ENOENT, `Unknown inode "${ino}"`);
    return inode;
  }

  dir(ino: Ino): Inode {
    const inode = this.get(ino);
    if (inode.kind !== "dir") fail(Errno.ENOTDIR, `Inode "${ino}" is not a directory`);
    return inode;
  }

  /** The local child named `name` of `parent` (a directory before a file). */
  localOf(parent: Inode, name: string): Inode | undefined {
    const l = parent.localChildren!;
    return l.get(localKey("dir", name)) ?? l.get(localKey("file", name));
  }

  // ---- Lookups -----------------------------------------------------------------

  /**
   * What `name` in `parent` is now: from the stat and negative caches when the
   * TTL allows and `forceRemote` is not set, else from S3.
   */
  async lookupChild(
    parent: Inode,
    name: string,
    signal: AbortSignal | undefined,
    forceRemote: boolean,
  ): Promise<Inode | null> {
    const negKey = negativeKey(parent, name);
    if (this.#ttl.serveFromCache && !forceRemote) {
      const c = parent.children!.get(name) ?? this.localOf(parent, name);
      if (c && (isLocal(c) || c.validUntil > Date.now())) return c;
      const until = this.#negative.get(negKey);
      if (!c && until !== undefined) {
        if (until > Date.now()) return null;
        this.#negative.delete(negKey);
      }
    }
    const remote = await this.#remoteLookup(parent, name, signal);
    const child = this.#applyRemote(parent, name, remote);
    if (child) this.#recentMiss.delete(negKey);
    else this.#rememberRecentMiss(negKey);
    if (child?.kind === "file" && remote?.kind === "file" && !isLocal(child)) {
      child.openableUntil = Date.now() + RECENT_HIT_MS;
    }
    if (this.#ttl.negativeMs > 0) {
      if (child) this.#negative.delete(negKey);
      else this.#rememberMissing(negKey);
    }
    return child;
  }

  /**
   * Whether S3 said `name` is missing from `parent` within the last
   * `RECENT_MISS_MS` and nothing has taken the name since: the create that
   * asks spends the answer (a second create asks S3 again).
   */
  takeRecentMiss(parent: Inode, name: string): boolean {
    const key = negativeKey(parent, name);
    const until = this.#recentMiss.get(key);
    if (until === undefined) return false;
    this.#recentMiss.delete(key);
    return until > Date.now() && !parent.children!.has(name) && !this.localOf(parent, name);
  }

  /** Whether a lookup just confirmed `inode`'s stat in S3; the open that asks spends it. */
  takeRecentHit(inode: Inode): boolean {
    const fresh = inode.openableUntil > Date.now() && inode.etag !== undefined && inode.attached;
    inode.openableUntil = 0;
    return fresh;
  }

  #rememberRecentMiss(key: string): void {
    this.#recentMiss.delete(key);
    this.#recentMiss.set(key, Date.now() + RECENT_MISS_MS);
    if (this.#recentMiss.size > RECENT_MISS_MAX) {
      this.#recentMiss.delete(this.#recentMiss.keys().next().value!);
    }
  }

  /** HeadObject(key) and ListObjectsV2(key + "/", max-keys 1) at once; a directory wins. */
  async #remoteLookup(parent: Inode, name: string, signal?: AbortSignal): Promise<Remote> {
    const key = parent.key + name;
    const headAbort = new AbortController();
    const onAbort = () => headAbort.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const head = this.#client.headObject(this.#c.bucket, key, { signal: headAbort.signal });
    head.catch(() => {}); // settled below, or abandoned when the directory wins
    try {
      const page = await this.#client.listObjects(this.#c.bucket, {
        prefix: key + "/",
        delimiter: "/",
        maxKeys: 1,
        signal,
      });
      if (page.objects.length > 0 || page.commonPrefixes.length > 0) {
        headAbort.abort();
        return { kind: "dir" };
      }
      const info = await head;
      return info ? { kind: "file", info } : null;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The inode a listing entry names (created or updated), or null for a local entry gone meanwhile. */
  fromListing(dir: Inode, e: ListedEntry): Inode | null {
    if (e.source === "local") {
      const local = this.localOf(dir, e.name);
      return local ? this.#answer(dir, local) : null;
    }
    return this.#applyRemote(
      dir,
      e.name,
      e.kind === "dir" ? { kind: "dir" } : { kind: "file", info: e.info },
    );
  }

  /**
   * The inode number plain readdir reports for a listing entry: the known
   * inode's when the kind matches (refreshing a remote file's stat), else a
   * fresh number that is not kept; null for a local entry that vanished
   * meanwhile (it is not shown).
   */
  inoOfListed(dir: Inode, e: ListedEntry): Ino | null {
    const existing = e.source === "local" ? this.localOf(dir, e.name) : dir.children!.get(e.name);
    if (e.source === "local" && !existing) return null;
    if (existing && existing.kind === "file" && e.source === "remote" && e.kind === "file") {
      if (!isLocal(existing)) this.setStat(existing, e.info);
    }
    return existing && existing.kind === e.kind ? existing.ino : this.#nextIno++;
  }

  /** Applies what S3 said about `name`: remote directory > local state > remote file. */
  #applyRemote(parent: Inode, name: string, remote: Remote): Inode | null {
    const existing = parent.children!.get(name);
    const local = this.localOf(parent, name);
    if (remote?.kind === "dir") {
      if (existing?.kind === "dir") {
        existing.validUntil = Date.now() + this.#ttl.statMs;
        return existing;
      }
      if (local?.kind === "dir") return this.#answer(parent, local);
      return this.#newChild(parent, name, "dir", undefined);
    }
    if (local) return this.#answer(parent, local);
    if (remote?.kind === "file") {
      if (existing?.kind === "file") {
        this.setStat(existing, remote.info);
        return existing;
      }
      return this.#newChild(parent, name, "file", remote.info);
    }
    if (existing) this.detach(existing);
    return null;
  }

  /** Makes `name` answer with `inode` (already attached through the local map). */
  #answer(parent: Inode, inode: Inode): Inode {
    const old = parent.children!.get(inode.name);
    if (old === inode) return inode;
    parent.children!.set(inode.name, inode);
    if (old) this.#unmapShadowed(old);
    return inode;
  }

  /** `inode` lost its name in `children`; it stays attached only while it is local. */
  #unmapShadowed(inode: Inode): void {
    if (inode.parent.localChildren!.get(localKey(inode.kind, inode.name)) === inode) return;
    inode.attached = false;
    this.maybeDrop(inode);
  }

  #newChild(
    parent: Inode,
    name: string,
    kind: Kind,
    info: ObjectInfo | undefined,
    ino: Ino = this.#nextIno++,
  ): Inode {
    const old = parent.children!.get(name);
    const inode: Inode = {
      ino,
      kind,
      parent,
      name,
      key: parent.key + name + (kind === "dir" ? "/" : ""),
      lookups: 0,
      opens: 0,
      size: 0,
      etag: undefined,
      mtimeMs: kind === "dir" ? this.#mountTimeMs : Date.now(),
      validUntil: Date.now() + this.#ttl.statMs,
      openableUntil: 0,
      local: "none",
      upload: null,
      attached: true,
      children: kind === "dir" ? new Map() : null,
      localChildren: kind === "dir" ? new Map() : null,
    };
    if (info) this.setStat(inode, info);
    parent.children!.set(name, inode);
    this.#inodes.set(inode.ino, inode);
    if (old) this.#unmapShadowed(old);
    return inode;
  }

  setStat(inode: Inode, info: ObjectInfo): void {
    inode.size = info.size;
    inode.etag = info.etag;
    inode.mtimeMs = info.lastModified.getTime();
    inode.validUntil = Date.now() + this.#ttl.statMs;
  }

  // ---- Takeover --------------------------------------------------------------------

  /**
   * A node a predecessor server handed to the kernel, numbered as it was,
   * with the references and handles the kernel holds. What S3 has behind it
   * is unknown (validity 0), so the first getattr asks. A name given out
   * twice (gone and created again) answers with the later node; the earlier
   * one lives on, unnamed, while the kernel holds it.
   */
  adopt(parent: Inode, ino: Ino, name: string, kind: Kind, lookups: number, opens: number): Inode {
    const inode = this.#newChild(parent, name, kind, undefined, ino);
    inode.lookups = lookups;
    inode.opens = opens;
    inode.validUntil = 0;
    return inode;
  }

  /** Numbers are handed out from `next` on (at least): none the kernel may hold is reused. */
  continueFrom(next: Ino): void {
    this.#nextIno = Math.max(this.#nextIno, next);
  }

  // ---- Local state ---------------------------------------------------------------

  /** A `mknod` or `mkdir` of `name`, which the caller checked does not exist: one lookup reference. */
  create(parent: Inode, name: string, kind: Kind): Inode {
    const inode = this.#newChild(parent, name, kind, undefined);
    inode.local = kind;
    inode.mtimeMs = Date.now();
    inode.lookups++;
    this.#propagateLocal(inode);
    this.#negative.delete(negativeKey(parent, name));
    return inode;
  }

  /** `upload` starts writing `inode` (a new file or an overwrite). */
  startWriting(inode: Inode, upload: Upload): void {
    inode.upload = upload;
    inode.mtimeMs = Date.now();
    this.#propagateLocal(inode);
  }

  /** `upload` completed: the inode and the mkdirs above it now exist in S3. */
  uploaded(inode: Inode, upload: Upload, result: { etag: string; size: number }): void {
    if (inode.upload !== upload) return;
    inode.upload = null;
    inode.local = "none";
    inode.etag = result.etag;
    inode.size = result.size;
    inode.mtimeMs = Date.now();
    inode.validUntil = Date.now() + this.#ttl.statMs;
    const touched: Inode[] = [inode];
    for (let d = inode.parent; d !== this.root; d = d.parent) {
      if (d.local === "dir") {
        d.local = "none";
        d.validUntil = Date.now() + this.#ttl.statMs;
        touched.push(d);
      }
    }
    for (const t of touched) this.#propagateLocal(t);
  }

  /** After a failed upload: a new file disappears; an overwritten one shows the old object again. */
  uploadFailed(inode: Inode, upload: Upload): void {
    if (upload.state !== "failed" || inode.upload !== upload) return;
    inode.upload = null;
    if (inode.local === "file") {
      inode.local = "none";
      this.detach(inode);
    } else {
      this.#propagateLocal(inode);
    }
  }

  /** `inode` was deleted (or, created and never written, dropped): its name goes. */
  removed(inode: Inode): void {
    inode.local = "none";
    this.detach(inode);
  }

  /** Keeps each ancestor's `localChildren` in step with `inode`'s local state. */
  #propagateLocal(inode: Inode): void {
    for (let n = inode; n !== this.root && n.attached; n = n.parent) {
      const locals = n.parent.localChildren!;
      const key = localKey(n.kind, n.name);
      const local = isLocal(n);
      if (local === (locals.get(key) === n)) return;
      if (local) locals.set(key, n);
      else locals.delete(key);
      // A shadowed file that stops being local loses its last link to the tree.
      if (!local && n.parent.children!.get(n.name) !== n) {
        n.attached = false;
        this.maybeDrop(n);
      }
    }
  }

  // ---- Letting go ------------------------------------------------------------------

  /** The kernel drops `nlookup` references. */
  forget(inode: Inode, nlookup: number): void {
    if (inode === this.root) return;
    inode.lookups = Math.max(0, inode.lookups - nlookup);
    if (inode.lookups === 0 && inode.opens === 0 && inode.local === "file" && !inode.upload) {
      // Created but never opened, and the kernel has let go of the name: nothing exists in S3,
      // so nothing remains (a CREATE whose open was refused, e.g. O_SYNC, leaves no empty file).
      this.removed(inode);
    }
    this.maybeDrop(inode);
  }

  /** Unmaps `inode` from its parent's name (it stays alive while referenced). */
  detach(inode: Inode): void {
    if (!inode.attached || inode === this.root) return;
    const parent = inode.parent;
    if (parent.children!.get(inode.name) === inode) parent.children!.delete(inode.name);
    inode.attached = false;
    const key = localKey(inode.kind, inode.name);
    if (parent.localChildren!.get(key) === inode) {
      parent.localChildren!.delete(key);
      this.#propagateLocal(parent);
    }
    this.maybeDrop(inode);
  }

  /** Drops `inode` from the table once nothing holds it. */
  maybeDrop(inode: Inode): void {
    if (inode === this.root || inode.lookups > 0 || inode.opens > 0 || isLocal(inode)) return;
    this.#inodes.delete(inode.ino);
    if (inode.attached && inode.parent.children!.get(inode.name) === inode) {
      inode.parent.children!.delete(inode.name);
    }
    inode.attached = false;
  }

  #rememberMissing(key: string): void {
    this.#negative.delete(key);
    this.#negative.set(key, Date.now() + this.#ttl.negativeMs);
    if (this.#negative.size > NEGATIVE_CACHE_MAX) {
      // Maps iterate in insertion order: drop the oldest entry.
      this.#negative.delete(this.#negative.keys().next().value!);
    }
  }

  // ---- Attributes --------------------------------------------------------------------

  attr(inode: Inode): Attr {
    const c = this.#c;
    const size = inode.kind === "dir" ? 0 : inode.upload ? inode.upload.size : inode.size;
    const t = inode.mtimeMs;
    return {
      ino: inode.ino,
      size,
      blocks: Math.ceil(size / 512),
      atimeMs: t,
      mtimeMs: t,
      ctimeMs: t,
      mode: inode.kind === "dir" ? S_IFDIR | c.dirMode : S_IFREG | c.fileMode,
      nlink: inode.kind === "dir" ? 2 : 1,
      uid: c.uid,
      gid: c.gid,
      blksize: 4096,
    };
  }

  entry(inode: Inode): Entry {
    return {
      ino: inode.ino,
      generation: 0,
      attr: this.attr(inode),
      entryTtlMs: this.#ttl.kernelMs,
      attrTtlMs: this.#ttl.kernelMs,
    };
  }
}

function negativeKey(parent: Inode, name: string): string {
  return `${parent.ino}/${name}`;
}
