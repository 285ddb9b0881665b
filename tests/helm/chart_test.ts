/**
 * The Helm chart offline: `helm lint --strict`, `helm template` for the
 * defaults and for several value sets, the schema refusing wrong values with
 * a message naming them, and the chart kept equal to the kustomize manifests
 * of `deploy/kubernetes/base` where they must agree (the CRD, the CSIDriver,
 * the permissions of each ServiceAccount), and every `s3csi` container's
 * arguments accepted by the real command line. Installing it on a real API
 * server is the end-to-end tier's (tests/e2e).
 */
import assert from "node:assert/strict";
import { loadAllYaml } from "@kubernetes/client-node";
import { CHART, helm, type Obj, render, REQUIRED } from "./chart.ts";
import { BEGIN, END, valuesTable } from "./values_table.ts";

const BASE = new URL("../../deploy/kubernetes/base/", import.meta.url);
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function base(): Promise<Obj[]> {
  const out: Obj[] = [];
  for await (const e of Deno.readDir(BASE)) {
    if (!e.name.endsWith(".yaml") || e.name === "kustomization.yaml") continue;
    out.push(...(loadAllYaml(await Deno.readTextFile(new URL(e.name, BASE))) as Obj[]));
  }
  return out.filter((o) => o);
}

const byKind = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);
const named = (objs: Obj[], kind: string, name: string) =>
  objs.find((o) => o.kind === kind && o.metadata.name === name);

/** Every permission bound to ServiceAccount `sa`, as "scope group/resource verb" strings. */
function permissions(objs: Obj[], sa: string): string[] {
  const out = new Set<string>();
  for (const b of objs.filter((o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding")) {
    if (!b.subjects?.some((s: Obj) => s.kind === "ServiceAccount" && s.name === sa)) continue;
    const role = named(objs, b.roleRef.kind, b.roleRef.name);
    assert.ok(role, `${b.kind} ${b.metadata.name} binds a missing ${b.roleRef.name}`);
    const scope = b.kind === "RoleBinding" ? `ns:${b.metadata.namespace}` : "cluster";
    for (const r of role.rules) {
      for (const g of r.apiGroups) {
        for (const res of r.resources) {
          for (const v of r.verbs) out.add(`${scope} ${g}/${res} ${v}`);
        }
      }
    }
  }
  return [...out].sort();
}

function container(objs: Obj[], kind: string, name: string, c: string): Obj {
  const w = named(objs, kind, name);
  assert.ok(w, `${kind} ${name} rendered`);
  const found = w.spec.template.spec.containers.find((x: Obj) => x.name === c);
  assert.ok(found, `container ${c} in ${name}`);
  return found;
}

Deno.test("helm lint --strict passes with the one required value", async () => {
  const r = await helm(["lint", "--strict", CHART, ...REQUIRED]);
  assert.equal(r.code, 0, r.out + r.err);
});

Deno.test("the chart's CRD and CSIDriver are the kustomize manifests' own", async () => {
  const [chart, kust] = [await render(), await base()];
  for (const kind of ["CustomResourceDefinition", "CSIDriver"]) {
    const [c, k] = [byKind(chart, kind), byKind(kust, kind)];
    assert.equal(c.length, 1);
    assert.equal(c[0].metadata.name, k[0].metadata.name);
    assert.deepEqual(c[0].spec, k[0].spec, `${kind} spec`);
  }
});

Deno.test("each ServiceAccount gets exactly the permissions the kustomize manifests grant", async () => {
  const [chart, kust] = [await render(), await base()];
  for (const sa of ["s3csi-controller", "s3csi-node"]) {
    assert.deepEqual(permissions(chart, sa), permissions(kust, sa), sa);
  }
  const node = permissions(chart, "s3csi-node");
  assert.ok(!node.some((p) => p.includes("/secrets ")), `the node reads no Secret: ${node}`);
});

Deno.test("every s3csi container's arguments are accepted by the real command line", async () => {
  for (
    const set of [REQUIRED, [...REQUIRED, "--set", "node.registration.sidecars=true"], [
      ...REQUIRED,
      "--set",
      "node.mounter=process",
    ]]
  ) {
    const objs = await render(set);
    for (const w of objs.filter((o) => o.kind === "Deployment" || o.kind === "DaemonSet")) {
      for (const c of w.spec.template.spec.containers) {
        if (c.command?.[0] !== "s3csi") continue;
        // $(VAR) references are the kubelet's to expand: give them a plausible value.
        const args = c.args.map((a: string) => a.replace(/\$\([A-Z_]+\)/g, "10.0.0.1"));
        const o = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", MAIN, ...args, "--help"],
          stdout: "null",
          stderr: "piped",
        }).output();
        assert.equal(
          o.code,
          0,
          `${w.metadata.name}/${c.name}: ${new TextDecoder().decode(o.stderr)}`,
        );
      }
    }
  }
});

Deno.test("the defaults: two controller replicas, the pod mounter, no sidecars, Mountpoint Pods restricted", async () => {
  const objs = await render();
  const dep = named(objs, "Deployment", "s3csi-controller")!;
  assert.equal(dep.spec.replicas, 2);
  const node = container(objs, "DaemonSet", "s3csi-node", "s3csi");
  assert.ok(node.args.includes("--mounter=pod"));
  assert.ok(node.args.includes("--kubelet-registration=true"));
  assert.equal(node.securityContext.privileged, true);
  const kubelet = node.volumeMounts.find((m: Obj) => m.name === "kubelet-dir");
  assert.equal(kubelet.mountPropagation, "Bidirectional");
  const ds = named(objs, "DaemonSet", "s3csi-node")!;
  assert.deepEqual(ds.spec.template.spec.containers.map((c: Obj) => c.name), ["s3csi"]);
  const ns = named(objs, "Namespace", "mount-s3")!;
  assert.equal(ns.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
  assert.ok(named(objs, "PriorityClass", "s3csi-mountpoint"));
  const env = (c: Obj) =>
    Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));
  const ctl = container(objs, "Deployment", "s3csi-controller", "s3csi");
  assert.equal(env(ctl).AWS_ENDPOINT_URL, "https://s3.example.com");
  assert.equal(env(ctl).AWS_SECRET_ACCESS_KEY.secretKeyRef.name, "s3csi-credentials");
  assert.equal(env(ctl).AWS_CA_BUNDLE, undefined, "no CA unless given");
});

Deno.test("value sets: sidecars, a custom kubelet path, an inline CA, a ServiceMonitor, host networking", async () => {
  const sidecars = await render([
    ...REQUIRED,
    "--set",
    "node.registration.sidecars=true",
    "--set",
    "node.kubeletPath=/data/kubelet",
  ]);
  const ds = named(sidecars, "DaemonSet", "s3csi-node")!;
  assert.deepEqual(
    ds.spec.template.spec.containers.map((c: Obj) => c.name),
    ["s3csi", "node-driver-registrar", "liveness-probe"],
  );
  const s3 = container(sidecars, "DaemonSet", "s3csi-node", "s3csi");
  assert.ok(s3.args.includes("--kubelet-registration=false"));
  assert.ok(s3.args.includes("--kubelet-path=/data/kubelet"));
  assert.ok(
    s3.args.includes("--endpoint=unix:///data/kubelet/plugins/s3.csi.scality.com/csi.sock"),
  );

  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const ca = await render([...REQUIRED, "--set-string", `tls.caCertData=${pem}`]);
  const cm = named(ca, "ConfigMap", "s3csi-ca")!;
  assert.equal(cm.data["ca-bundle.crt"], pem);
  for (const [kind, name] of [["Deployment", "s3csi-controller"], ["DaemonSet", "s3csi-node"]]) {
    const c = container(ca, kind, name, "s3csi");
    assert.ok(c.env.some((e: Obj) => e.name === "AWS_CA_BUNDLE"), `${name} trusts the CA`);
    assert.ok(c.volumeMounts.some((m: Obj) => m.name === "custom-ca"));
  }

  const sm = await render([
    ...REQUIRED,
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
  ]);
  assert.ok(named(sm, "ServiceMonitor", "s3csi"));
  assert.deepEqual(
    byKind(sm, "Service").map((s) => s.metadata.name).sort(),
    ["s3csi-controller-metrics", "s3csi-node-metrics"],
  );

  const host = await render([
    ...REQUIRED,
    "--set",
    "controller.hostNetwork=true",
    "--set",
    "kubernetesApi.host=127.0.0.1",
    "--set-string",
    "kubernetesApi.port=6443",
  ]);
  const dep = named(host, "Deployment", "s3csi-controller")!;
  assert.equal(dep.spec.template.spec.hostNetwork, true);
  const prov = container(host, "Deployment", "s3csi-controller", "csi-provisioner");
  assert.deepEqual(prov.env.map((e: Obj) => e.value), ["127.0.0.1", "6443"]);
});

Deno.test("a wrong value fails with a message naming it", async () => {
  const cases: [string[], RegExp][] = [
    [[], /endpointUrl/],
    [["--set", "s3.endpointUrl=s3.example.com"], /endpointUrl/],
    [[...REQUIRED, "--set", "node.kubletPath=/x"], /kubletPath/],
    [[...REQUIRED, "--set", "logLevel=verbose"], /logLevel/],
    [[...REQUIRED, "--set", "controller.replicas=0"], /replicas/],
    [[...REQUIRED, "--set", "mountpointPod.resources.limits.memory=lots"], /memory/],
    [[...REQUIRED, "--set", "node.mounter=thread"], /mounter/],
    [[...REQUIRED, "--set", "metrics.serviceMonitor.enabled=true"], /ServiceMonitor/],
    [
      [...REQUIRED, "--set", "tls.caCertConfigMap=x", "--set-string", "tls.caCertData=x"],
      /caCertData/,
    ],
  ];
  for (const [args, want] of cases) {
    const r = await helm(["template", "s3csi", CHART, ...args]);
    assert.notEqual(r.code, 0, `accepted: ${args.join(" ")}`);
    assert.match(r.err, want, `${args.join(" ")}: ${r.err}`);
  }
});

Deno.test("the README's table of values is the schema's, with the defaults of values.yaml", async () => {
  const cells = (block: string) =>
    block.split("\n").filter((l) => l.startsWith("|") && !/^\|\s*-+/.test(l)).map((l) =>
      l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()).join(" | ")
    );
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const [from, to] = [readme.indexOf(BEGIN), readme.indexOf(END)];
  assert.ok(from >= 0 && to > from, "the README has the generated block");
  assert.deepEqual(
    cells(readme.slice(from, to)),
    cells(await valuesTable()),
    "regenerate with: deno run -A tests/helm/values_table.ts",
  );
});
