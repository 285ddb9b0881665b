import assert from "node:assert/strict";
import { nameUuid, parseVolumeId, validateBucketName } from "./volume_id.ts";

Deno.test("nameUuid() is a stable RFC 9562 version 5 UUID of the name", async () => {
  const a = await nameUuid("pvc-1234");
  assert.equal(a, await nameUuid("pvc-1234"));
  assert.notEqual(a, await nameUuid("pvc-1235"));
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  // Long CSI names (csi-sanity sends 128 characters, uppercase) still fit a bucket name.
  const long = `csi-s3-${await nameUuid("X".repeat(128))}`;
  assert.equal(validateBucketName(long), undefined);
  assert.equal(long.length, 43);
});

Deno.test("parseVolumeId() recovers bucket and prefix of both modes and rejects foreign IDs", () => {
  const id = "csi-s3-0f8fad5b-d9cb-569f-a165-70867728950e";
  assert.deepEqual(parseVolumeId(id), { mode: "dedicated", id, bucket: id, prefix: "" });
  assert.deepEqual(parseVolumeId(`shared-b/${id}`), {
    mode: "shared",
    id: `shared-b/${id}`,
    bucket: "shared-b",
    prefix: `${id}/`,
  });
  for (
    const bad of ["fake-vol-id", "csi-s3-nope", `Bad_Bucket/${id}`, `b/${id}/x`, `b/x-${id}`, ""]
  ) {
    assert.equal(parseVolumeId(bad), undefined, bad);
  }
});

Deno.test("validateBucketName() explains why a name is invalid", () => {
  assert.equal(validateBucketName("my-bucket.1"), undefined);
  assert.match(validateBucketName("ab")!, /3 to 63/);
  assert.match(validateBucketName("Upper")!, /lowercase/);
  assert.match(validateBucketName("a..b")!, /adjacent dots/);
  assert.match(validateBucketName("192.168.1.1")!, /IP address/);
  assert.match(validateBucketName("xn--abc")!, /reserved/);
});
