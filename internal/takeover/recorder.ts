/**
 * The journal as a FUSE session and a file system feed it, and what a
 * successor reads back from it.
 *
 * `JournalRecorder` is the session's `SessionRecorder` (internal/fuse/
 * dispatch.ts: node IDs, references, handles, INIT values) and the file
 * system's `UploadLedger` (internal/fs/upload.ts: multipart uploads). An
 * upload's creation is written at once rather than with the next reply:
 * it happens between requests, and a server killed before the next reply
 * would leave an upload nobody knows to abort.
 *
 * A journal that cannot be written (a full or read-only disk) never fails
 * a request: the error is logged once, recording stops, and the file is
 * removed so that no successor replays a record that is behind the kernel.
 * The mount goes on; it just cannot be taken over.
 *
 * `successorOf` turns a replayed state into what a successor starts from:
 * the negotiated values to resume with and the file system's `Adoption`.
 *
 * @module
 */
import type { Adoption, FileHandle, Ino, UploadLedger } from "../fs/mod.ts";
import type { SessionRecorder } from "../fuse/dispatch.ts";
import { type Negotiated, negotiatedFromJson, negotiatedToJson } from "../fuse/init.ts";
import type { Logger } from "../log/mod.ts";
import { errorMessage } from "../errors/mod.ts";
import { Journal, type JournalRecord, type JournalState, ROOT } from "./journal.ts";

export class JournalRecorder implements SessionRecorder, UploadLedger {
  readonly #journal: Journal;
  readonly #log: Logger;
  readonly #discard: () => void;
  #broken = false;

  /** `discard` removes the journal's file once it cannot be kept right. */
  constructor(journal: Journal, log: Logger, discard: () => void) {
    this.#journal = journal;
    this.#log = log;
    this.#discard = discard;
  }

  /** Whether records still reach the file (false once a write failed). */
  get healthy(): boolean {
    return !this.#broken;
  }

  init(n: Negotiated): void {
    this.#record({ t: "init", init: negotiatedToJson(n) });
  }

  entry(parent: Ino, name: string, ino: Ino, kind: "file" | "dir"): void {
    if (this.#broken) return;
    if (!this.#journal.state.nodes.has(ino)) this.#record({ t: "node", ino, parent, name, kind });
    this.#record({ t: "ref", ino, n: 1 });
  }

  forget(ino: Ino, nlookup: number): void {
    this.#record({ t: "forget", ino, n: nlookup });
  }

  opened(fh: FileHandle, ino: Ino, flags: number, version: string | undefined): void {
    this.#record(
      version === undefined
        ? { t: "open", fh, ino, flags }
        : { t: "open", fh, ino, flags, etag: version },
    );
  }

  released(fh: FileHandle): void {
    this.#record({ t: "release", fh });
  }

  started(uploadId: string, key: string): void {
    this.#record({ t: "mpu", id: uploadId, key });
    this.flush();
  }

  ended(uploadId: string): void {
    this.#record({ t: "mpu_end", id: uploadId });
  }

  flush(): void {
    if (this.#broken || this.#journal.pending === 0) return;
    try {
      this.#journal.flush();
    } catch (err) {
      this.#broken = true;
      this.#log.error("Cannot write the takeover journal: this mount cannot be taken over", {
        error: errorMessage(err),
      });
      try {
        this.#discard();
      } catch {
        // Nothing more to do: a successor finds no journal, or a stale one it cannot trust.
      }
    }
  }

  #record(r: JournalRecord): void {
    if (!this.#broken) this.#journal.record(r);
  }
}

/** What a successor starts from. */
export interface Successor {
  resume: Negotiated;
  adoption: Adoption;
}

/** The successor a replayed journal describes; throws when it has no INIT values (nothing to resume). */
export function successorOf(s: JournalState): Successor {
  if (!s.init) throw new Error("The journal holds no FUSE session (no INIT values)");
  const adoption: Adoption = {
    nodes: [],
    handles: [],
    uploads: [],
    nextIno: s.maxIno + 1,
    nextFh: s.maxFh + 1,
  };
  // Map order is record order, and a node's parent is recorded before it.
  for (const [ino, n] of s.nodes) {
    if (ino === ROOT) continue;
    adoption.nodes.push({ ino, parent: n.parent, name: n.name, kind: n.kind, lookups: n.refs });
  }
  for (const [fh, h] of s.handles) {
    adoption.handles.push(
      h.etag === undefined ? { fh, ino: h.ino, flags: h.flags } : {
        fh,
        ino: h.ino,
        flags: h.flags,
        version: h.etag,
      },
    );
  }
  for (const [uploadId, key] of s.uploads) adoption.uploads.push({ uploadId, key });
  return { resume: negotiatedFromJson(s.init), adoption };
}
