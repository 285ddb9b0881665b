/**
 * `s3csi reconciler`: Mountpoint Pods and their attachments. Not implemented: its UnimplementedError makes
 * `main.ts` exit 3.
 */
import { UnimplementedError } from "../../internal/errors/mod.ts";

export const summary = "Reconciler (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UnimplementedError("not implemented yet"));
}
