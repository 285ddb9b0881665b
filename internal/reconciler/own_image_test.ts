import assert from "node:assert/strict";
import { StartupError } from "../errors/mod.ts";
import { RESOURCES } from "../kube/mod.ts";
import { FakeKubeApi } from "../kube/fake_api.ts";
import { ownImage } from "./own_image.ts";

Deno.test("ownImage: the image of the container running the reconciler", async () => {
  const api = new FakeKubeApi();
  await api.create(RESOURCES.pod, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "ctl-1", namespace: "s3csi" },
    spec: {
      containers: [
        { name: "s3csi", image: "reg/s3csi:2", command: ["s3csi"], args: ["controller"] },
        { name: "reconciler", image: "reg/s3csi:3", command: ["s3csi"], args: ["reconciler"] },
      ],
    },
  });
  assert.equal(await ownImage(api, "s3csi", "ctl-1"), "reg/s3csi:3");
  await assert.rejects(ownImage(api, "s3csi", "gone"), StartupError);
});
