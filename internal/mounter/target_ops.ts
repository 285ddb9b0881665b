/**
 * Bind mounts of a source mount onto pod targets, and target health.
 * A read-only publish is a bind mount remounted with MS_RDONLY, so the
 * kernel refuses writes with EROFS before they reach the file system.
 *
 * @module
 */
import { checkMount, type MountHealth, unmount } from "../fuse/mod.ts";
import { mount, MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY } from "../sys/libc.ts";

const MS_REMOUNT = 32;

export class BindTargetOps {
  bind(source: string, target: string, readOnly: boolean): Promise<void> {
    mount(source, target, "", MS_BIND, "");
    if (readOnly) {
      try {
        mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "");
      } catch (err) {
        unmount(target, { lazy: true });
        throw err;
      }
    }
    return Promise.resolve();
  }

  unmount(path: string, lazy: boolean): Promise<void> {
    unmount(path, { lazy });
    return Promise.resolve();
  }

  check(path: string): Promise<MountHealth> {
    return checkMount(path);
  }
}
