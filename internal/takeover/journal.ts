/**
 * The takeover journal: what a replacement FUSE server must know of the
 * session it takes over. The kernel sends a replacement no INIT, and still
 * holds the node IDs and file handles the old server gave out; without them
 * every path the workload has open would turn stale.
 *
 * What is recorded, one JSON line per record:
 *
 *     {"t":"init", ...}                          the negotiated INIT values
 *     {"t":"node","ino","parent","name","kind"}  a node ID first handed to the kernel
 *     {"t":"ref","ino","n"}                      n more kernel references to it (lookups)
 *     {"t":"forget","ino","n"}                   n references dropped (FORGET)
 *     {"t":"open","fh","ino","flags","etag"?}    a file or directory handle handed out
 *     {"t":"release","fh"}                       a handle released
 *     {"t":"mpu","id","key"}                     a multipart upload created
 *     {"t":"mpu_end","id"}                       ...and completed or aborted
 *
 * Multipart uploads are there so that a replacement aborts what a dead
 * server left half-written: no object appears, and no parts are kept (and
 * billed) forever.
 *
 * Ordering. A record is made durable against the server's death (written
 * to the file with write(2); the page cache outlives a killed process, and
 * a node reboot ends the mount anyway) before the reply that makes it true
 * reaches the kernel: the session calls `flush()` before it writes replies,
 * so many records cost one write. A record the kernel never learned of is
 * harmless (a node or handle the kernel does not hold); the reverse never
 * happens.
 *
 * Replay (`replay`) accepts any prefix of a journal, a torn last line
 * included, and yields a consistent state: every node's parent is known,
 * every handle's node is known, and a node goes once nothing holds it (no
 * references, no handle, no child). Records about unknown nodes or handles
 * are skipped.
 *
 * Bound. When the file holds more than `COMPACT_FACTOR` times the lines a
 * snapshot of the live state would, it is rewritten as that snapshot (a
 * temporary file renamed over it), so its size follows what the kernel
 * holds, not how long the mount has run.
 *
 * @module
 */

/**
 * The FUSE connection parameters a replacement must keep using, in the
 * session's own JSON form (the journal only keeps the latest).
 */
export type InitValues = Record<string, string | number | boolean | string[]>;

export type NodeKind = "file" | "dir";

export type JournalRecord =
  | { t: "init"; init: InitValues }
  | { t: "node"; ino: number; parent: number; name: string; kind: NodeKind }
  | { t: "ref"; ino: number; n: number }
  | { t: "forget"; ino: number; n: number }
  | { t: "open"; fh: number; ino: number; flags: number; etag?: string }
  | { t: "release"; fh: number }
  | { t: "mpu"; id: string; key: string }
  | { t: "mpu_end"; id: string };

export interface JournalNode {
  parent: number;
  name: string;
  kind: NodeKind;
  /** Kernel references (lookups not yet forgotten). */
  refs: number;
  /** Nodes whose parent this is, and handles open on it: what else keeps it. */
  kids: number;
  opens: number;
}

export interface JournalHandle {
  ino: number;
  flags: number;
  /** The ETag a reader pinned. */
  etag?: string;
}

/** What replay yields. The root (`ROOT`) is always there and never goes. */
export interface JournalState {
  init: InitValues | null;
  nodes: Map<number, JournalNode>;
  handles: Map<number, JournalHandle>;
  /** Multipart uploads not known to be over: upload ID → key. */
  uploads: Map<string, string>;
  /** Highest node ID and handle seen, so a replacement never hands one out twice. */
  maxIno: number;
  maxFh: number;
}

export const ROOT = 1;
/** Rewrite the file once it holds this many times the lines of a snapshot. */
export const COMPACT_FACTOR = 4;
/** ...but never for fewer lines than this. */
export const COMPACT_MIN_LINES = 4096;

export function emptyState(): JournalState {
  return {
    init: null,
    nodes: new Map([[ROOT, { parent: ROOT, name: "", kind: "dir", refs: 0, kids: 0, opens: 0 }]]),
    handles: new Map(),
    uploads: new Map(),
    maxIno: ROOT,
    maxFh: 0,
  };
}

/** Applies one record; returns false (changing nothing) when it names what the state does not hold. */
export function apply(s: JournalState, r: JournalRecord): boolean {
  switch (r.t) {
    case "init":
      s.init = r.init;
      return true;
    case "node": {
      if (r.ino === ROOT || s.nodes.has(r.ino) || !s.nodes.has(r.parent)) return false;
      s.nodes.set(r.ino, {
        parent: r.parent,
        name: r.name,
        kind: r.kind,
        refs: 0,
        kids: 0,
        opens: 0,
      });
      s.nodes.get(r.parent)!.kids++;
      s.maxIno = Math.max(s.maxIno, r.ino);
      return true;
    }
    case "ref": {
      const node = s.nodes.get(r.ino);
      if (!node || !(r.n > 0)) return false;
      node.refs += r.n;
      return true;
    }
    case "forget": {
      const node = s.nodes.get(r.ino);
      if (!node || r.ino === ROOT) return false;
      node.refs = Math.max(0, node.refs - r.n);
      collect(s, r.ino);
      return true;
    }
    case "open": {
      const node = s.nodes.get(r.ino);
      if (!node || s.handles.has(r.fh)) return false;
      node.opens++;
      s.handles.set(
        r.fh,
        r.etag === undefined ? { ino: r.ino, flags: r.flags } : {
          ino: r.ino,
          flags: r.flags,
          etag: r.etag,
        },
      );
      s.maxFh = Math.max(s.maxFh, r.fh);
      return true;
    }
    case "release": {
      const h = s.handles.get(r.fh);
      if (!h) return false;
      s.handles.delete(r.fh);
      s.nodes.get(h.ino)!.opens--;
      collect(s, h.ino);
      return true;
    }
    case "mpu":
      if (s.uploads.has(r.id)) return false;
      s.uploads.set(r.id, r.key);
      return true;
    case "mpu_end":
      return s.uploads.delete(r.id);
  }
}

/** Drops `ino` and then its ancestors while nothing holds them. */
function collect(s: JournalState, ino: number): void {
  while (ino !== ROOT) {
    const node = s.nodes.get(ino);
    if (!node || node.refs > 0 || node.kids > 0 || node.opens > 0) return;
    s.nodes.delete(ino);
    s.nodes.get(node.parent)!.kids--;
    ino = node.parent;
  }
}

/** The state a journal's text describes; a torn or unreadable line ends it there. */
export function replay(text: string): JournalState {
  const s = emptyState();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let r: JournalRecord;
    try {
      r = JSON.parse(line);
    } catch {
      break; // A torn last line: the server died while writing it.
    }
    apply(s, r);
  }
  // A journal cut between a node and its first reference leaves it held by nothing.
  for (const ino of [...s.nodes.keys()]) collect(s, ino);
  return s;
}

/** The records that rebuild `s`, parents before children. */
export function snapshot(s: JournalState): JournalRecord[] {
  const out: JournalRecord[] = [];
  if (s.init) out.push({ t: "init", init: s.init });
  const written = new Set<number>([ROOT]);
  const emit = (ino: number): void => {
    if (written.has(ino)) return;
    const node = s.nodes.get(ino)!;
    emit(node.parent);
    written.add(ino);
    out.push({ t: "node", ino, parent: node.parent, name: node.name, kind: node.kind });
    if (node.refs > 0) out.push({ t: "ref", ino, n: node.refs });
  };
  for (const ino of s.nodes.keys()) emit(ino);
  for (const [fh, h] of s.handles) out.push({ t: "open", fh, ...h });
  for (const [id, key] of s.uploads) out.push({ t: "mpu", id, key });
  return out;
}

/** Where the journal's lines go: appended in order, or replaced whole. */
export interface JournalSink {
  append(text: string): void;
  replace(text: string): void;
}

/**
 * The writing side: records are applied to the live state at once and
 * buffered; `flush()` writes them in one append, and compacts when due.
 */
export class Journal {
  readonly state: JournalState;
  #pending: string[] = [];
  #lines: number;

  constructor(readonly sink: JournalSink, state: JournalState = emptyState()) {
    this.state = state;
    this.#lines = 0;
    // Start from a snapshot: a replacement's file holds exactly what it replayed.
    this.#compact();
  }

  /** Applies and queues `r`; records the state cannot hold are dropped. */
  record(r: JournalRecord): void {
    if (apply(this.state, r)) this.#pending.push(JSON.stringify(r));
  }

  /** Lines queued and not yet written. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Writes what is queued (call before sending the replies it describes). */
  flush(): void {
    if (this.#pending.length === 0) return;
    const text = this.#pending.join("\n") + "\n";
    this.#lines += this.#pending.length;
    this.#pending = [];
    const live = this.state.nodes.size + this.state.handles.size + this.state.uploads.size;
    if (this.#lines > Math.max(COMPACT_MIN_LINES, COMPACT_FACTOR * live)) this.#compact();
    else this.sink.append(text);
  }

  /** Lines in the file now. */
  get lines(): number {
    return this.#lines;
  }

  #compact(): void {
    const records = snapshot(this.state);
    this.sink.replace(
      records.map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : ""),
    );
    this.#lines = records.length;
  }
}

/** A journal file in a private state directory, written with synchronous write(2) calls. */
export class FileSink implements JournalSink {
  #file: Deno.FsFile;
  readonly #enc = new TextEncoder();

  constructor(readonly path: string) {
    this.#file = Deno.openSync(path, { create: true, append: true, mode: 0o600 });
  }

  append(text: string): void {
    const bytes = this.#enc.encode(text);
    let at = 0;
    while (at < bytes.byteLength) at += this.#file.writeSync(bytes.subarray(at));
  }

  replace(text: string): void {
    const tmp = `${this.path}.tmp`;
    Deno.writeTextFileSync(tmp, text, { mode: 0o600 });
    Deno.renameSync(tmp, this.path);
    this.#file.close();
    this.#file = Deno.openSync(this.path, { append: true });
  }

  close(): void {
    this.#file.close();
  }
}
