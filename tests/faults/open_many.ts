/**
 * Holds many files of a mount open at once, as a busy workload does.
 *
 * argv: <dir> <readers> <writers>. Opens r/<i> (existing objects holding
 * "<i>") for reading and w/<i> (new files) for writing, all before closing
 * any; writes each new file's path into it, reads each existing file whole,
 * then closes all. The first failure prints "<step> <path>: <errno name>"
 * and exits 1. A child process of the test, so that a call the mount holds
 * never holds the test runner.
 *
 * @module
 */
import { errnoName } from "../mount/harness.ts";

const [dir, readers, writers] = [Deno.args[0], Number(Deno.args[1]), Number(Deno.args[2])];
const enc = new TextEncoder();
const dec = new TextDecoder();

function step<T>(what: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    console.log(`${what} ${path}: ${errnoName(err)}`);
    Deno.exit(1);
  }
}

const held: { kind: "r" | "w"; path: string; file: Deno.FsFile }[] = [];
for (let i = 0; i < readers; i++) {
  const path = `${dir}/r/${i}`;
  held.push({ kind: "r", path, file: step("open", path, () => Deno.openSync(path)) });
}
step("mkdir", `${dir}/w`, () => Deno.mkdirSync(`${dir}/w`, { recursive: true }));
for (let i = 0; i < writers; i++) {
  const path = `${dir}/w/${i}`;
  const file = step("open", path, () => Deno.openSync(path, { write: true, createNew: true }));
  held.push({ kind: "w", path, file });
}
console.log(`open ${held.length}`);
const buf = new Uint8Array(4096);
for (const { kind, path, file } of held) {
  if (kind === "w") {
    step("write", path, () => file.writeSync(enc.encode(path)));
    continue;
  }
  const n = step("read", path, () => file.readSync(buf)) ?? 0;
  const want = path.slice(path.lastIndexOf("/") + 1);
  if (dec.decode(buf.subarray(0, n)) !== want) {
    console.log(`read ${path}: wrong bytes`);
    Deno.exit(1);
  }
}
for (const { path, file } of held) step("close", path, () => file.close());
console.log("closed");
