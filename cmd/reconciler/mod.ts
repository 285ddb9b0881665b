/** `s3csi reconciler`: wiring only (see internal/). */
import { UnimplementedError } from "../../internal/errors/mod.ts";

export const summary = "Reconciler (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UnimplementedError("not implemented yet"));
}
