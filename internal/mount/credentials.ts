/**
 * Credentials for the mount process, from the standard AWS sources:
 * `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, or a
 * profile (`AWS_PROFILE`, default "default") in the shared credentials file
 * (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`).
 *
 * A profile file is watched: when its modification time changes the next
 * request reads it again. The CSI node writes a volume's credentials to such
 * a file, readable only by root, and rewrites it when a secret rotates, so a
 * running mount picks up new credentials without a restart.
 *
 * @module
 */
import { registerSecret } from "../log/mod.ts";
import { credentialsFromEnv } from "../s3/credentials.ts";
import type { Credentials } from "../s3/object_client.ts";

/** Parses an AWS shared credentials file (INI) into profiles. */
export function parseIni(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = {};
      out.set(section[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0 && current) {
      current[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
    }
  }
  return out;
}

function fromProfile(p: Record<string, string> | undefined): Credentials | undefined {
  if (!p?.aws_access_key_id || !p.aws_secret_access_key) return undefined;
  registerSecret(p.aws_secret_access_key);
  registerSecret(p.aws_session_token);
  const c: Credentials = {
    accessKeyId: p.aws_access_key_id,
    secretAccessKey: p.aws_secret_access_key,
  };
  if (p.aws_session_token) c.sessionToken = p.aws_session_token;
  return c;
}

export type CredentialSource =
  | { kind: "env"; credentials: Credentials }
  | { kind: "file"; path: string; profile: string; provider: () => Promise<Credentials> }
  | { kind: "default" };

/**
 * Resolves where credentials come from. A named profile that is missing or
 * incomplete is an error naming the file and profile (checked once at start).
 */
export async function resolveCredentials(
  env: { get(k: string): string | undefined } = Deno.env,
): Promise<CredentialSource> {
  const fromEnv = credentialsFromEnv(env);
  if (fromEnv) return { kind: "env", credentials: fromEnv };
  const home = env.get("HOME") ?? "/root";
  const explicitFile = env.get("AWS_SHARED_CREDENTIALS_FILE");
  const path = explicitFile ?? `${home}/.aws/credentials`;
  const profile = env.get("AWS_PROFILE") ?? "default";
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (explicitFile || env.get("AWS_PROFILE")) {
      throw new Error(`Cannot read credentials file "${path}": ${(err as Error).message}`);
    }
    return { kind: "default" };
  }
  if (!fromProfile(parseIni(text).get(profile))) {
    throw new Error(
      `Cannot use profile "${profile}" of "${path}": it has no aws_access_key_id and aws_secret_access_key`,
    );
  }
  return { kind: "file", path, profile, provider: watchedProfile(path, profile) };
}

/** A provider that re-reads `path` whenever its mtime changes (checked at most once a second). */
export function watchedProfile(path: string, profile: string): () => Promise<Credentials> {
  let cached: Credentials | undefined;
  let mtime = -1;
  let checkedAt = 0;
  return async () => {
    const now = Date.now();
    if (cached && now - checkedAt < 1000) return cached;
    checkedAt = now;
    try {
      const st = await Deno.stat(path);
      const m = st.mtime?.getTime() ?? 0;
      if (!cached || m !== mtime) {
        const next = fromProfile(parseIni(await Deno.readTextFile(path)).get(profile));
        if (next) {
          cached = next;
          mtime = m;
        }
      }
    } catch {
      // Keep the last good credentials if the file is being replaced.
    }
    if (!cached) throw new Error(`Cannot read credentials from profile "${profile}" of "${path}"`);
    return cached;
  };
}

/** The credentials of `profile` in the file at `path`; undefined when it has none (or no file). */
export async function readCredentialsFile(
  path: string,
  profile: string,
): Promise<Credentials | undefined> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return fromProfile(parseIni(text).get(profile));
}

/**
 * Writes a one-profile credentials file atomically with mode 0600, owned by
 * `owner` when given (the user a Mountpoint Pod runs as).
 */
export async function writeCredentialsFile(
  path: string,
  profile: string,
  c: Credentials,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const lines = [
    `[${profile}]`,
    `aws_access_key_id = ${c.accessKeyId}`,
    `aws_secret_access_key = ${c.secretAccessKey}`,
  ];
  if (c.sessionToken) lines.push(`aws_session_token = ${c.sessionToken}`);
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, lines.join("\n") + "\n", { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  if (owner) await Deno.chown(tmp, owner.uid, owner.gid);
  await Deno.rename(tmp, path);
}
