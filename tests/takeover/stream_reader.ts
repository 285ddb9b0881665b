/**
 * A workload process for the takeover tests whose node runs in the test
 * process itself (the pod mounter's): `deno run -A stream_reader.ts <file>`
 * reads the file to the end with one open handle, retrying a failed read at
 * the same offset, and prints `at <bytes>` every 8 MiB, then one JSON line
 * `{"sha256": …, "errors": [errno names]}`. A workload in the node's own
 * process could stall the node's event loop on the very mount it recovers.
 *
 * @module
 */
import { streamRead } from "./load.ts";

if (import.meta.main) {
  const path = Deno.args[0];
  let next = 0;
  const result = await streamRead(path, (offset) => {
    if (offset < next) return;
    next = offset + 8 * 1024 * 1024;
    console.log(`at ${offset}`);
  });
  console.log(JSON.stringify(result));
}
