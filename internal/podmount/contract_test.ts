import assert from "node:assert/strict";
import {
  HAND_OVER_NOTICE,
  hostCommDir,
  isHandOverNotice,
  MOUNT_REQUEST_VERSION,
  nodeLabel,
  parseMountReply,
  parseMountRequest,
  ProtocolError,
  volumeLabel,
} from "./contract.ts";

const good = {
  version: MOUNT_REQUEST_VERSION,
  bucket: "b",
  args: ["--read-only"],
  authenticationSource: "secret",
};

Deno.test("parseMountRequest() keeps exactly the contract's fields of a valid request", () => {
  assert.deepEqual(parseMountRequest(JSON.stringify({ ...good, extra: 1 })), good);
  assert.deepEqual(parseMountRequest(JSON.stringify({ ...good, takeOver: true })), {
    ...good,
    takeOver: true,
  });
  assert.deepEqual(parseMountRequest(JSON.stringify({ ...good, takeOver: false })), good);
});

Deno.test("isHandOverNotice() knows the notice and nothing else", () => {
  assert.equal(isHandOverNotice(JSON.stringify(HAND_OVER_NOTICE)), true);
  for (const line of ['{"ok":true}', '{"handedOver":"yes"}', "{", "null"]) {
    assert.equal(isHandOverNotice(line), false, line);
  }
});

Deno.test("parseMountRequest() refuses what is not a request, naming the part at fault", () => {
  const cases: [unknown, RegExp][] = [
    [{ ...good, version: 2 }, /^Unsupported mount request version 2: .* speaks version 1$/],
    [{ ...good, version: "1" }, /version "1"/],
    [{ ...good, bucket: "" }, /no bucket/],
    [{ ...good, args: ["a", 1] }, /args is not a list of strings/],
    [{ ...good, authenticationSource: "pod" }, /authenticationSource "pod"/],
    [{ ...good, takeOver: "yes" }, /takeOver is not a boolean/],
    [[good], /not a JSON object/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(
      () => parseMountRequest(JSON.stringify(value)),
      (e: unknown) => e instanceof ProtocolError && pattern.test(e.message),
      JSON.stringify(value),
    );
  }
  assert.throws(() => parseMountRequest("{"), /not JSON/);
});

Deno.test("parseMountReply() accepts ok and errors, nothing else", () => {
  assert.deepEqual(parseMountReply('{"ok":true}'), { ok: true });
  assert.deepEqual(parseMountReply('{"ok":false,"error":"Bucket \\"x\\" does not exist"}'), {
    ok: false,
    error: 'Bucket "x" does not exist',
  });
  assert.throws(() => parseMountReply('{"ok":false}'), ProtocolError);
  assert.throws(() => parseMountReply('{"ok":"yes"}'), ProtocolError);
});

Deno.test("volumeLabel() is a valid label value, stable and distinct per volume ID", async () => {
  const long = "x".repeat(300);
  const a = await volumeLabel(long);
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.equal(await volumeLabel(long), a);
  assert.notEqual(await volumeLabel(`${long}y`), a);
});

Deno.test("hostCommDir() is the comm emptyDir of the pod under the kubelet's pod directory", () => {
  assert.equal(
    hostCommDir("/var/lib/kubelet", "u-1"),
    "/var/lib/kubelet/pods/u-1/volumes/kubernetes.io~empty-dir/comm",
  );
});

Deno.test("nodeLabel() keeps a node name that fits a label value and digests a longer one", async () => {
  assert.equal(await nodeLabel("node-1"), "node-1");
  const long = await nodeLabel("n".repeat(200));
  assert.match(long, /^[0-9a-f]{32}$/);
  assert.notEqual(await nodeLabel(`${"n".repeat(200)}x`), long);
});
