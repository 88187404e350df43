/**
 * Who owns a piece of background work, and whether that owner is still alive: ids of the form
 * `<hostname>:<pid>:<random>` (a worker, a process's tmp/ directory). Only an owner on this host
 * can be checked; owners elsewhere are given the benefit of the doubt.
 */
import { hostname } from "node:os";

/** Whether a process on this host is alive (EPERM: alive, just not ours to signal). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** `<hostname>:<pid>:<random>`: who owns a piece of background work, and where it ran. */
export function newOwnerId(): string {
  return `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
}

/** The pid in an owner id, when that owner ran on this host. */
export function localPid(ownerId: string, host = hostname()): number | null {
  const parts = ownerId.split(":");
  if (parts.length < 3) return null;
  const pid = Number(parts[parts.length - 2]);
  const ownerHost = parts.slice(0, -2).join(":");
  return ownerHost === host && Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/**
 * True only when the owner certainly died: it ran on this host, in another process, and that
 * process is gone. Owners elsewhere, or in this process, are given the benefit of the doubt.
 */
export function ownerIsDead(ownerId: string): boolean {
  const pid = localPid(ownerId);
  return pid !== null && pid !== process.pid && !processAlive(pid);
}

/**
 * True when work owned by `ownerId` has certainly lost its owner, seen from the process whose own
 * id is `self`: it died (see ownerIsDead), or it ran here under this process's pid with another
 * id, a previous life of the same pid (a restarted container's pid 1).
 */
export function ownerIsGone(ownerId: string, self: string): boolean {
  if (ownerId === self) return false;
  return localPid(ownerId) === process.pid || ownerIsDead(ownerId);
}
