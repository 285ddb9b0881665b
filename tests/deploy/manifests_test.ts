/**
 * Offline checks of the Kubernetes manifests under `deploy/kubernetes/`: no
 * cluster is needed. Each file is parsed into the typed Kubernetes models of
 * `@kubernetes/client-node`; a field the models do not know (a typo such as
 * `mountPropogation`) is dropped by that parse, so it is caught by comparing
 * the keys written in the file with the keys of the re-serialised objects.
 * The arguments of every `s3csi` container are run through the real command
 * line (`main.ts <role> <args> --help`), and the examples' StorageClass
 * parameters and mount options through the driver's own parsers, so the
 * manifests cannot drift from the code.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dumpYaml, loadAllYaml } from "@kubernetes/client-node";
import { DRIVER_NAME } from "../../internal/version.ts";
import { parseStorageParams } from "../../internal/csi/controller_server.ts";
import { Ctx, SecretKey } from "../../internal/csi/volume_context.ts";
import { parseMountOptions } from "../../internal/mounter/mount_options.ts";
import {
  ATTACHMENT,
  COMPONENT_MOUNTPOINT,
  LABEL_COMPONENT,
  MOUNTPOINT_NAMESPACE,
} from "../../internal/podmount/contract.ts";
import { DEFAULT_RESOURCES, mountpointPod } from "../../internal/reconciler/mountpoint_pod.ts";
import { defaultKubeletEndpoint } from "../../internal/csi/registration.ts";

const ROOT = new URL("../../", import.meta.url);
const BASE = new URL("deploy/kubernetes/base/", ROOT);
const EXAMPLES = new URL("deploy/kubernetes/examples/", ROOT);
const IMAGE = "ghcr.io/example/s3csi:0.1.0";
const KUBELET = "/var/lib/kubelet";
const PLUGIN_DIR = `${KUBELET}/plugins/${DRIVER_NAME}/`;
const SOCKET = "/csi/csi.sock";
const NAMESPACE = "s3csi";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

interface Doc {
  file: string;
  obj: Obj;
}

/** Mapping keys written in YAML text (block style), comments excluded. */
function yamlKeys(text: string): Set<string> {
  const keys = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^\s*(?:-\s+)*("?)([^\s#"'-][^:#"]*?)\1:(?:\s|$)/.exec(line);
    if (m) keys.add(m[2]);
  }
  return keys;
}

/** Splits a multi-document YAML file at its `---` lines. */
function splitDocs(text: string): string[] {
  return text.split(/^---\s*$/m).filter((d) => d.replace(/^\s*#.*$/gm, "").trim() !== "");
}

/** Fields written in a file but dropped by the typed parse, one line per document. */
const unknownFields: string[] = [];

async function loadDir(dir: URL): Promise<Doc[]> {
  const docs: Doc[] = [];
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".yaml"))
    .sort();
  for (const file of names) {
    const text = await Deno.readTextFile(new URL(file, dir));
    const parsed = loadAllYaml(text);
    const sources = splitDocs(text);
    assert.equal(parsed.length, sources.length, `${file}: documents parsed vs written`);
    parsed.forEach((typed, i) => {
      const written = yamlKeys(sources[i]);
      const kept = yamlKeys(dumpYaml(typed));
      const dropped = [...written].filter((k) => !kept.has(k));
      if (dropped.length > 0) {
        unknownFields.push(`${file} document ${i + 1}: ${dropped.join(", ")}`);
      }
      docs.push({ file, obj: JSON.parse(JSON.stringify(typed)) });
    });
  }
  return docs;
}

const base = await loadDir(BASE);
const examples = await loadDir(EXAMPLES);
const all = [...base, ...examples];

function find(docs: Doc[], kind: string, name?: string): Obj[] {
  return docs.map((d) => d.obj).filter((o) =>
    o.kind === kind && (name === undefined || o.metadata?.name === name)
  );
}

function one(docs: Doc[], kind: string, name?: string): Obj {
  const found = find(docs, kind, name);
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` "${name}"` : ""}`);
  return found[0];
}

function containers(workload: Obj): Obj[] {
  return workload.spec.template.spec.containers;
}

function container(workload: Obj, name: string): Obj {
  const c = containers(workload).find((c) => c.name === name);
  assert.ok(c, `container "${name}" in ${workload.kind} "${workload.metadata.name}"`);
  return c;
}

function allows(rules: Obj[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) =>
    r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb)
  );
}

function flagValue(args: string[], flag: string): string | undefined {
  const hit = args.find((a) => a === flag || a.startsWith(`${flag}=`));
  if (hit === undefined) return undefined;
  return hit.includes("=") ? hit.slice(hit.indexOf("=") + 1) : "";
}

function mountOf(c: Obj, volume: string): Obj | undefined {
  return (c.volumeMounts ?? []).find((m: Obj) => m.name === volume);
}

function volumeOf(workload: Obj, name: string): Obj {
  const v = workload.spec.template.spec.volumes.find((v: Obj) => v.name === name);
  assert.ok(v, `volume "${name}" in ${workload.metadata.name}`);
  return v;
}

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

const CLUSTER_SCOPED = new Set([
  "Namespace",
  "CustomResourceDefinition",
  "PriorityClass",
  "CSIDriver",
  "ClusterRole",
  "ClusterRoleBinding",
  "StorageClass",
  "PersistentVolume",
  "Kustomization",
]);

Deno.test("manifests: every object has apiVersion, kind and metadata.name", () => {
  assert.ok(base.length >= 10, `base holds ${base.length} objects`);
  for (const { file, obj } of all) {
    if (obj.kind === "Kustomization") continue;
    assert.ok(obj.apiVersion, `${file}: apiVersion`);
    assert.ok(obj.kind, `${file}: kind`);
    assert.ok(obj.metadata?.name, `${file}: metadata.name of a ${obj.kind}`);
  }
});

Deno.test("manifests: every field written is known to the Kubernetes API models", () => {
  assert.deepEqual(unknownFields, []);
});

Deno.test("manifests: base objects live in the driver's namespace", () => {
  one(base, "Namespace", NAMESPACE);
  for (const { file, obj } of base) {
    if (CLUSTER_SCOPED.has(obj.kind)) continue;
    const where = `${file}: ${obj.kind} ${obj.metadata.name}`;
    // Rights over Mountpoint Pods (the reconciler's to make them, the node's to read them) are
    // granted only where they live.
    if (obj.kind === "Role" || obj.kind === "RoleBinding") {
      assert.ok([NAMESPACE, MOUNTPOINT_NAMESPACE].includes(obj.metadata.namespace), where);
    } else {
      assert.equal(obj.metadata.namespace, NAMESPACE, where);
    }
  }
});

Deno.test("manifests: kustomization lists exactly the base files", async () => {
  const k = one(base, "Kustomization");
  const files = [...Deno.readDirSync(BASE)].map((e) => e.name)
    .filter((n) => n.endsWith(".yaml") && n !== "kustomization.yaml").sort();
  assert.deepEqual([...k.resources].sort(), files);
  assert.deepEqual(k.images.map((i: Obj) => `${i.name}:${i.newTag}`), [IMAGE]);
  for (const f of k.resources) await Deno.stat(new URL(f, BASE));
});

Deno.test("manifests: CSIDriver is s3.csi.scality.com, attach-free, fsGroup delegated", () => {
  const d = one(base, "CSIDriver");
  assert.equal(d.metadata.name, DRIVER_NAME);
  assert.equal(d.spec.attachRequired, false);
  assert.equal(d.spec.podInfoOnMount, true);
  // Delegation comes from VOLUME_MOUNT_GROUP; the policy must never let kubelet chown objects.
  assert.equal(d.spec.fsGroupPolicy, "None");
  assert.equal(d.spec.requiresRepublish, true);
  assert.deepEqual(d.spec.volumeLifecycleModes, ["Persistent"]);
});

Deno.test("manifests: images are the s3csi placeholder or pinned sig-storage sidecars", () => {
  const own = new RegExp(`^${IMAGE.replaceAll(".", "\\.")}$`);
  const expected: Record<string, RegExp> = {
    "s3csi": own,
    "reconciler": own,
    "csi-provisioner": /^registry\.k8s\.io\/sig-storage\/csi-provisioner:v6\.\d+\.\d+$/,
    "node-driver-registrar":
      /^registry\.k8s\.io\/sig-storage\/csi-node-driver-registrar:v2\.\d+\.\d+$/,
    "liveness-probe": /^registry\.k8s\.io\/sig-storage\/livenessprobe:v2\.\d+\.\d+$/,
  };
  for (const w of [...find(base, "Deployment"), ...find(base, "DaemonSet")]) {
    for (const c of containers(w)) {
      assert.ok(expected[c.name], `unexpected container "${c.name}"`);
      assert.match(c.image, expected[c.name]);
    }
  }
});

Deno.test("manifests: every container has requests and a memory limit", () => {
  for (const w of [...find(base, "Deployment"), ...find(base, "DaemonSet")]) {
    for (const c of containers(w)) {
      const where = `${w.metadata.name}/${c.name}`;
      assert.ok(c.resources?.requests?.cpu, `${where}: cpu request`);
      assert.ok(c.resources?.requests?.memory, `${where}: memory request`);
      assert.ok(c.resources?.limits?.memory, `${where}: memory limit`);
      assert.equal(c.resources?.limits?.cpu, undefined, `${where}: no cpu limit`);
    }
  }
});

Deno.test("manifests: s3csi containers' arguments and environment match the real CLI", async () => {
  const config = one(base, "ConfigMap", "s3csi-config");
  const extraEnv = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NODE_NAME",
    "HOME",
  ];
  const roles: [Obj, string, string][] = [
    [one(base, "Deployment", "s3csi-controller"), "s3csi", "controller"],
    [one(base, "Deployment", "s3csi-controller"), "reconciler", "reconciler"],
    [one(base, "DaemonSet", "s3csi-node"), "s3csi", "node"],
  ];
  for (const [workload, name, role] of roles) {
    const c = container(workload, name);
    assert.deepEqual(c.command, ["s3csi"]);
    assert.equal(c.args[0], role);
    const help = await runCli([role, "--help"]);
    assert.equal(help.code, 0, help.err);
    const known = new Set([...help.out.matchAll(/env: ([A-Z0-9_]+)/g)].map((m) => m[1]));
    extraEnv.forEach((e) => known.add(e));
    // Unknown flags or malformed ones make the real parser exit 2 before --help is honoured.
    const run = await runCli([...c.args, "--help"]);
    assert.equal(run.code, 0, `s3csi ${c.args.join(" ")}: ${run.err}`);
    // A variable may also exist only to be expanded, as $(NAME), in another's value or in args.
    const expanded = JSON.stringify([c.args, (c.env ?? []).map((e: Obj) => e.value ?? "")]);
    for (const e of c.env ?? []) {
      const used = known.has(e.name) || expanded.includes(`$(${e.name})`);
      assert.ok(used, `${role}: env ${e.name} is unused`);
    }
    for (const ref of c.envFrom ?? []) {
      assert.equal(ref.configMapRef.name, config.metadata.name);
    }
    // Every key of the ConfigMap must mean something to a role that loads it.
    for (const key of c.envFrom ? Object.keys(config.data) : []) {
      assert.ok(known.has(key), `${role}: ConfigMap key ${key} is not an environment variable`);
    }
    // The node reaches its socket through the kubelet mount (it has no plugin-dir mount).
    const endpoint = role === "node" ? `${PLUGIN_DIR}${SOCKET.slice("/csi/".length)}` : SOCKET;
    if (role !== "reconciler") assert.equal(flagValue(c.args, "--endpoint"), `unix://${endpoint}`);
  }
});

Deno.test("manifests: a mistyped s3csi flag is refused by the CLI check", async () => {
  const run = await runCli(["node", "--kubelet-dir=/var/lib/kubelet", "--help"]);
  assert.equal(run.code, 2);
  assert.match(run.err, /kubelet-dir/);
});

Deno.test("manifests: controller shares its socket with a leader-electing provisioner", () => {
  const d = one(base, "Deployment", "s3csi-controller");
  const p = container(d, "csi-provisioner");
  assert.equal(flagValue(p.args, "--csi-address"), SOCKET);
  assert.equal(flagValue(p.args, "--extra-create-metadata"), "");
  if (d.spec.replicas > 1) assert.equal(flagValue(p.args, "--leader-election"), "");
  const socketVol = volumeOf(d, "socket-dir");
  assert.deepEqual(socketVol.emptyDir, {});
  // The reconciler speaks to the API server only, not to the CSI socket.
  for (const c of containers(d).filter((c) => c.name !== "reconciler")) {
    assert.equal(mountOf(c, "socket-dir")?.mountPath, "/csi", `${c.name} mounts the socket dir`);
  }
  const probe = container(d, "liveness-probe");
  assert.equal(flagValue(probe.args, "--csi-address"), SOCKET);
  const port = flagValue(probe.args, "--health-port");
  const s3 = container(d, "s3csi");
  assert.equal(String(s3.ports.find((p: Obj) => p.name === "healthz").containerPort), port);
  assert.equal(s3.livenessProbe.httpGet.port, "healthz");
});

Deno.test("manifests: node mounts kubelet bidirectionally and /dev/fuse, and not the plugin dir on its own", () => {
  const ds = one(base, "DaemonSet", "s3csi-node");
  const spec = ds.spec.template.spec;
  const s3 = container(ds, "s3csi");
  assert.equal(s3.securityContext.privileged, true);
  assert.notEqual(spec.hostPID, true);
  const kubeletPath = flagValue(s3.args, "--kubelet-path");
  assert.equal(kubeletPath, KUBELET);
  assert.equal(volumeOf(ds, "kubelet-dir").hostPath.path, KUBELET);
  const km = mountOf(s3, "kubelet-dir");
  assert.equal(km?.mountPath, KUBELET, "kubelet dir at the same path as on the host");
  assert.equal(km?.mountPropagation, "Bidirectional");
  const fuse = volumeOf(ds, "dev-fuse").hostPath;
  assert.deepEqual([fuse.path, fuse.type], ["/dev/fuse", "CharDevice"]);
  assert.equal(mountOf(s3, "dev-fuse")?.mountPath, "/dev/fuse");
  assert.equal(volumeOf(ds, "plugin-dir").hostPath.path, PLUGIN_DIR);
  // A private mount of the sources' directory would pin, in a restarted node plugin, copies of
  // the sources mounted before it, and their FUSE connections with them.
  assert.equal(
    mountOf(s3, "plugin-dir"),
    undefined,
    "s3csi mounts the plugin dir only via kubelet",
  );
  const nodeName = s3.env.find((e: Obj) => e.name === "NODE_NAME");
  assert.equal(nodeName?.valueFrom?.fieldRef?.fieldPath, "spec.nodeName");
});

Deno.test("manifests: node registers itself with kubelet and serves its own /healthz", () => {
  const ds = one(base, "DaemonSet", "s3csi-node");
  const s3 = container(ds, "s3csi");
  assert.deepEqual(containers(ds).map((c) => c.name), ["s3csi"], "no sidecars");
  assert.notEqual(flagValue(s3.args, "--kubelet-registration"), "false");
  const regDir = volumeOf(ds, "registration-dir").hostPath;
  assert.deepEqual([regDir.path, regDir.type], [`${KUBELET}/plugins_registry/`, "Directory"]);
  const regMount = mountOf(s3, "registration-dir")?.mountPath;
  assert.equal(flagValue(s3.args, "--registration-dir") ?? `${KUBELET}/plugins_registry`, regMount);
  // What GetInfo tells kubelet: the CSI socket at its host path, inside the plugin dir.
  const told = flagValue(s3.args, "--kubelet-registration-path") ??
    defaultKubeletEndpoint(SOCKET, KUBELET, DRIVER_NAME);
  assert.equal(told, `${PLUGIN_DIR}${SOCKET.slice("/csi/".length)}`);
  const port = s3.ports.find((p: Obj) => p.name === s3.livenessProbe.httpGet.port);
  assert.equal(s3.livenessProbe.httpGet.path, "/healthz");
  assert.equal(String(port?.containerPort), flagValue(s3.args, "--health-port"));
  // kubelet probes the pod IP (no httpGet.host): /healthz must listen there.
  assert.equal(s3.livenessProbe.httpGet.host, undefined);
  const address = s3.env.find((e: Obj) => e.name === "S3CSI_HEALTH_ADDRESS");
  assert.equal(address?.valueFrom?.fieldRef?.fieldPath, "status.podIP");
});

Deno.test("manifests: driver credentials come from the s3csi-credentials secret keys", () => {
  const want: Record<string, string> = {
    AWS_ACCESS_KEY_ID: SecretKey.accessKeyId,
    AWS_SECRET_ACCESS_KEY: SecretKey.secretAccessKey,
    AWS_SESSION_TOKEN: SecretKey.sessionToken,
  };
  const secret = one(examples, "Secret", "s3csi-credentials");
  assert.equal(secret.metadata.namespace, NAMESPACE);
  for (const w of [...find(base, "Deployment"), ...find(base, "DaemonSet")]) {
    const env = container(w, "s3csi").env;
    for (const [name, key] of Object.entries(want)) {
      const ref = env.find((e: Obj) => e.name === name)?.valueFrom?.secretKeyRef;
      assert.deepEqual([ref?.name, ref?.key], [secret.metadata.name, key], `${name}`);
    }
  }
});

Deno.test("manifests: provisioner RBAC covers what the sidecar needs, bound to its account", () => {
  const d = one(base, "Deployment", "s3csi-controller");
  const sa = d.spec.template.spec.serviceAccountName;
  one(base, "ServiceAccount", sa);
  const binding = one(base, "ClusterRoleBinding", "s3csi-provisioner");
  assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }]);
  const role = one(base, "ClusterRole", binding.roleRef.name);
  const needs: [string, string, string[]][] = [
    ["", "persistentvolumes", ["get", "list", "watch", "create", "patch", "delete"]],
    ["", "persistentvolumeclaims", ["get", "list", "watch", "update"]],
    ["storage.k8s.io", "storageclasses", ["get", "list", "watch"]],
    ["", "events", ["create", "patch"]],
    ["storage.k8s.io", "csinodes", ["get", "list", "watch"]],
    ["", "secrets", ["get"]],
  ];
  for (const [group, resource, verbs] of needs) {
    for (const verb of verbs) {
      assert.ok(allows(role.rules, group, resource, verb), `${verb} ${resource}`);
    }
  }
  assert.ok(!allows(role.rules, "", "secrets", "list"), "secrets: get only");
  assert.ok(!role.rules.some((r: Obj) => r.verbs.includes("*") || r.resources.includes("*")));
  const rb = one(base, "RoleBinding", "s3csi-provisioner-leader-election");
  assert.equal(rb.subjects[0].name, sa);
  const leases = one(base, "Role", rb.roleRef.name);
  for (const verb of ["get", "create", "update"]) {
    assert.ok(allows(leases.rules, "coordination.k8s.io", "leases", verb), `${verb} leases`);
  }
});

/** Rules of the roles bound to service account `sa`, by the binding's kind. */
function rulesBoundTo(sa: string, bindingKind: string, roleKind: string): Obj[] {
  return find(base, bindingKind).filter((b) =>
    b.subjects.some((s: Obj) => s.kind === "ServiceAccount" && s.name === sa)
  ).flatMap((b) => {
    assert.equal(b.roleRef.kind, roleKind);
    const role = one(base, roleKind, b.roleRef.name);
    assert.equal(role.metadata.namespace, b.metadata.namespace, `${b.metadata.name}'s role`);
    return role.rules.map((r: Obj) => ({ ...r, namespace: b.metadata.namespace }));
  });
}

Deno.test("manifests: node RBAC is its Node, attachments and Mountpoint Pods, read-mostly", () => {
  const ds = one(base, "DaemonSet", "s3csi-node");
  const sa = ds.spec.template.spec.serviceAccountName;
  assert.equal(sa, "s3csi-node");
  assert.notEqual(one(base, "ServiceAccount", sa).automountServiceAccountToken, false);
  assert.notEqual(ds.spec.template.spec.automountServiceAccountToken, false);
  const grants = (rules: Obj[]) =>
    rules.flatMap((r) =>
      r.apiGroups.flatMap((g: string) =>
        r.resources.flatMap((res: string) =>
          r.verbs.map((v: string) => `${r.namespace ?? "*"} ${g || "core"}/${res} ${v}`)
        )
      )
    ).sort();
  assert.deepEqual(grants(rulesBoundTo(sa, "ClusterRoleBinding", "ClusterRole")), [
    "* core/nodes get",
    "* core/nodes patch",
    "* s3.csi.scality.com/mountpoints3podattachments get",
    "* s3.csi.scality.com/mountpoints3podattachments list",
    "* s3.csi.scality.com/mountpoints3podattachments watch",
  ]);
  assert.deepEqual(grants(rulesBoundTo(sa, "RoleBinding", "Role")), [
    `${MOUNTPOINT_NAMESPACE} core/pods get`,
  ]);
});

Deno.test("examples: StorageClasses pass the controller's parameter and mount option checks", () => {
  const classes = find(examples, "StorageClass");
  assert.deepEqual(classes.map((c) => c.parameters.bucketNaming).sort(), ["dedicated", "shared"]);
  const cacheRoot = `${PLUGIN_DIR}cache`;
  for (const sc of classes) {
    assert.equal(sc.provisioner, DRIVER_NAME);
    parseStorageParams(sc.parameters);
    parseMountOptions(sc.mountOptions ?? [], { cacheRoot });
  }
  const shared = classes.find((c) => c.parameters.bucketNaming === "shared")!;
  assert.ok(shared.parameters.bucketName);
});

Deno.test("examples: static PV names its bucket, auth source and a defined secret", () => {
  const pv = one(examples, "PersistentVolume");
  assert.equal(pv.spec.csi.driver, DRIVER_NAME);
  const attrs = pv.spec.csi.volumeAttributes;
  const known = new Set<string>(Object.values(Ctx));
  for (const k of Object.keys(attrs)) assert.ok(known.has(k), `volume attribute ${k}`);
  assert.ok(attrs[Ctx.bucketName]);
  assert.equal(attrs[Ctx.authenticationSource], "secret");
  const opts = parseMountOptions(pv.spec.mountOptions, { cacheRoot: `${PLUGIN_DIR}cache` });
  assert.equal(opts.prefix, "team/");
  const ref = pv.spec.csi.nodePublishSecretRef;
  const secret = one(examples, "Secret", ref.name);
  assert.equal(secret.metadata.namespace, ref.namespace);
  const pvc = find(examples, "PersistentVolumeClaim").find((c) =>
    c.spec.volumeName === pv.metadata.name
  );
  assert.ok(pvc, "a claim bound to the static PV");
  assert.equal(pvc.spec.storageClassName, "");
});

Deno.test("examples: every secret reference resolves to a secret with the driver's keys", () => {
  const secrets = find(examples, "Secret");
  for (const s of secrets) {
    assert.ok(s.stringData[SecretKey.accessKeyId], `${s.metadata.name}: access key`);
    assert.ok(s.stringData[SecretKey.secretAccessKey], `${s.metadata.name}: secret key`);
  }
  const refs: [string, string][] = [];
  for (const sc of find(examples, "StorageClass")) {
    for (const kind of ["provisioner", "node-publish"]) {
      const name = sc.parameters[`csi.storage.k8s.io/${kind}-secret-name`];
      if (name) refs.push([name, sc.parameters[`csi.storage.k8s.io/${kind}-secret-namespace`]]);
    }
  }
  assert.ok(refs.length >= 2);
  for (const [name, ns] of refs) {
    assert.ok(
      secrets.some((s) => s.metadata.name === name && s.metadata.namespace === ns),
      `secret ${ns}/${name}`,
    );
  }
});

Deno.test("examples: claims use defined classes and the pod uses a defined claim", () => {
  const classes = new Set(find(examples, "StorageClass").map((c) => c.metadata.name));
  const claims = find(examples, "PersistentVolumeClaim");
  for (const c of claims) {
    assert.ok(c.spec.storageClassName === "" || classes.has(c.spec.storageClassName));
    assert.deepEqual(c.spec.accessModes, ["ReadWriteMany"]);
  }
  const pod = one(examples, "Pod");
  for (const v of pod.spec.volumes) {
    const claim = claims.find((c) =>
      c.metadata.name === v.persistentVolumeClaim.claimName &&
      c.metadata.namespace === pod.metadata.namespace
    );
    assert.ok(claim, `claim ${v.persistentVolumeClaim.claimName}`);
  }
});

Deno.test("CRD: the s3pa resource of the contract, cluster-scoped, with exactly the spec's fields", () => {
  const crd = one(base, "CustomResourceDefinition");
  assert.equal(crd.metadata.name, `${ATTACHMENT.plural}.${ATTACHMENT.group}`);
  assert.equal(crd.spec.group, ATTACHMENT.group);
  assert.equal(crd.spec.scope, "Cluster");
  assert.equal(crd.spec.names.kind, ATTACHMENT.kind);
  assert.equal(crd.spec.names.plural, ATTACHMENT.plural);
  assert.deepEqual(crd.spec.names.shortNames, [ATTACHMENT.shortName]);
  const [v] = crd.spec.versions;
  assert.equal(crd.spec.versions.length, 1);
  assert.deepEqual([v.name, v.served, v.storage], [ATTACHMENT.version, true, true]);
  const spec = v.schema.openAPIV3Schema.properties.spec;
  const fields = [
    "nodeName",
    "persistentVolumeName",
    "volumeID",
    "mountOptions",
    "workloadFSGroup",
    "authenticationSource",
    "mountpointS3PodAttachments",
  ];
  assert.deepEqual(Object.keys(spec.properties).sort(), [...fields].sort());
  assert.deepEqual([...spec.required].sort(), [...fields].sort());
  for (const f of fields.slice(0, -1)) assert.equal(spec.properties[f].type, "string", f);
  const pods = spec.properties.mountpointS3PodAttachments;
  assert.equal(pods.type, "object");
  const entry = pods.additionalProperties;
  assert.equal(entry.type, "array");
  assert.deepEqual(Object.keys(entry.items.properties).sort(), [
    "attachmentTime",
    "workloadPodUID",
  ]);
  // Structural: every node of the schema has a type.
  const untyped: string[] = [];
  const walk = (s: Obj, path: string) => {
    if (!s.type) untyped.push(path);
    for (const [k, p] of Object.entries(s.properties ?? {})) walk(p as Obj, `${path}.${k}`);
    if (s.items) walk(s.items, `${path}[]`);
    if (typeof s.additionalProperties === "object") walk(s.additionalProperties, `${path}{}`);
  };
  walk(v.schema.openAPIV3Schema, "");
  assert.deepEqual(untyped, []);
  const columns = Object.fromEntries(
    v.additionalPrinterColumns.map((c: Obj) => [c.jsonPath, c.name]),
  );
  assert.equal(columns[".spec.nodeName"], "Node");
  assert.equal(columns[".spec.persistentVolumeName"], "PV");
  assert.equal(columns[".spec.volumeID"], "Volume");
  assert.equal(columns[".metadata.creationTimestamp"], "Age");
});

Deno.test("manifests: the Mountpoint Pods' namespace enforces the restricted Pod Security profile", () => {
  const ns = one(base, "Namespace", MOUNTPOINT_NAMESPACE);
  for (const mode of ["enforce", "warn", "audit"]) {
    assert.equal(ns.metadata.labels[`pod-security.kubernetes.io/${mode}`], "restricted", mode);
  }
});

Deno.test("manifests: the Mountpoint Pod the reconciler makes passes the restricted profile", () => {
  const reconciler = container(one(base, "Deployment", "s3csi-controller"), "reconciler");
  const priorityClass = flagValue(reconciler.args, "--priority-class");
  one(base, "PriorityClass", priorityClass);
  const pod = mountpointPod(
    { name: "mp-1", nodeName: "n1", nodeLabel: "n1", volumeLabel: "v" },
    {
      spec: {
        csi: { driver: DRIVER_NAME, volumeHandle: "v", volumeAttributes: { cache: "emptyDir" } },
      },
    },
    {
      image: IMAGE,
      priorityClassName: priorityClass!,
      version: "0.1.0",
      resources: DEFAULT_RESOURCES,
    },
  );
  // The pod parses into the typed models without losing a field.
  const typed = loadAllYaml(dumpYaml(pod))[0];
  assert.deepEqual(JSON.parse(JSON.stringify(typed)), JSON.parse(JSON.stringify(pod)));
  assert.equal(pod.metadata?.namespace, MOUNTPOINT_NAMESPACE);
  assert.equal(pod.metadata?.labels?.[LABEL_COMPONENT], COMPONENT_MOUNTPOINT);
  const spec = pod.spec!;
  // The checks of the restricted profile (Kubernetes' Pod Security Standards).
  assert.ok(!spec.hostNetwork && !spec.hostPID && !spec.hostIPC);
  for (const v of spec.volumes ?? []) assert.ok(v.emptyDir, `volume ${v.name} is an emptyDir`);
  assert.equal(spec.securityContext?.runAsNonRoot, true);
  assert.notEqual(spec.securityContext?.runAsUser, 0);
  assert.equal(spec.securityContext?.seccompProfile?.type, "RuntimeDefault");
  for (const c of spec.containers) {
    const sc = c.securityContext!;
    assert.equal(sc.privileged ?? false, false);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities?.drop, ["ALL"]);
    assert.equal(sc.capabilities?.add, undefined);
    assert.ok(!c.ports?.some((p) => p.hostPort), "no host ports");
    assert.equal(c.image, IMAGE);
  }
});

Deno.test("manifests: the reconciler's RBAC is what it uses, and pods only in mount-s3", () => {
  const sa = one(base, "Deployment", "s3csi-controller").spec.template.spec.serviceAccountName;
  const binding = one(base, "ClusterRoleBinding", "s3csi-reconciler");
  assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }]);
  const cluster = one(base, "ClusterRole", binding.roleRef.name).rules;
  for (const r of ["pods", "persistentvolumeclaims", "persistentvolumes", "nodes"]) {
    for (const verb of ["get", "list", "watch"]) {
      assert.ok(allows(cluster, "", r, verb), `${verb} ${r}`);
    }
    for (const verb of ["create", "update", "patch", "delete"]) {
      assert.ok(!allows(cluster, "", r, verb), `no cluster-wide ${verb} ${r}`);
    }
  }
  for (const verb of ["get", "list", "watch", "create", "update", "delete"]) {
    assert.ok(allows(cluster, ATTACHMENT.group, ATTACHMENT.plural, verb), `${verb} s3pa`);
  }
  assert.ok(!cluster.some((r: Obj) => r.verbs.includes("*") || r.resources.includes("*")));
  const rb = one(base, "RoleBinding", "s3csi-reconciler-mountpoint-pods");
  assert.equal(rb.metadata.namespace, MOUNTPOINT_NAMESPACE);
  assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }]);
  const pods = one(base, "Role", rb.roleRef.name);
  assert.equal(pods.metadata.namespace, MOUNTPOINT_NAMESPACE);
  assert.deepEqual([...pods.rules[0].verbs].sort(), ["create", "delete"]);
  assert.deepEqual(pods.rules[0].resources, ["pods"]);
  const leases = one(base, "Role", "s3csi-provisioner-leader-election");
  for (const verb of ["get", "create", "update"]) {
    assert.ok(allows(leases.rules, "coordination.k8s.io", "leases", verb), `${verb} leases`);
  }
});
