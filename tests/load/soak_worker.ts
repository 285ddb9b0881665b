/**
 * The soak's workload on one mounted volume, in a child process so that a
 * call the mount holds never holds the test runner: until the deadline, at
 * random, writes a new file (1-4 MiB), reads one back and checks its bytes,
 * lists the directory and checks it names exactly the live files, deletes
 * one. It is the only writer of its directory, so every answer has one
 * right value.
 *
 * argv: <dir> <seconds>. Prints one JSON line at the end:
 * `{ ops: {write, read, list, delete}, errors: ["<op> <name>: <errno>"] }`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { errnoName } from "../mount/harness.ts";

const [dir, seconds] = [Deno.args[0], Number(Deno.args[1])];
const deadline = Date.now() + seconds * 1000;
const live = new Map<string, string>(); // name -> sha256
const ops = { write: 0, read: 0, list: 0, delete: 0 };
const errors: string[] = [];
let seq = 0;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const pick = () => [...live.keys()][Math.floor(Math.random() * live.size)];

function bytes(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) crypto.getRandomValues(out.subarray(at, at + 65_536));
  return out;
}

async function op(name: string, kind: keyof typeof ops, fn: () => Promise<void>) {
  try {
    await fn();
    ops[kind]++;
  } catch (err) {
    errors.push(`${kind} ${name}: ${err instanceof Error && "code" in err ? errnoName(err) : err}`);
  }
}

while (Date.now() < deadline && errors.length < 20) {
  const r = Math.random();
  if (live.size < 4 || r < 0.3) {
    const name = `f${seq++}`;
    const data = bytes((1 + Math.floor(Math.random() * 4)) * 1024 * 1024);
    await op(name, "write", async () => {
      await Deno.writeFile(`${dir}/${name}`, data, { createNew: true });
      live.set(name, sha(data));
    });
  } else if (r < 0.65) {
    const name = pick();
    await op(name, "read", async () => {
      const got = sha(await Deno.readFile(`${dir}/${name}`));
      if (got !== live.get(name)) throw new Error("wrong bytes");
    });
  } else if (r < 0.85) {
    await op("/", "list", async () => {
      const names = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      const want = [...live.keys()].sort();
      if (JSON.stringify(names.sort()) !== JSON.stringify(want)) {
        throw new Error(`listed ${names.length} names, ${want.length} live`);
      }
    });
  } else {
    const name = pick();
    await op(name, "delete", async () => {
      await Deno.remove(`${dir}/${name}`);
      live.delete(name);
    });
  }
}
console.log(JSON.stringify({ ops, errors }));
