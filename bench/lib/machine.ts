/** What the figures were measured on: machine, OS, and every tool's version. */
import { cpus, totalmem } from "node:os";
import { autocannonVersion, wrkVersion } from "./load.ts";
import { canPin, readText, which } from "./util.ts";

export interface MachineInfo {
  date: string;
  cpu: string;
  cores: number;
  memGiB: number;
  kernel: string;
  os: string;
  pinning: string;
  versions: Record<string, string>;
}

function firstLine(cmd: string[], stream: "stdout" | "stderr" = "stdout"): string | null {
  const bin = which(cmd[0] ?? "");
  if (!bin) return null;
  try {
    const r = Bun.spawnSync([bin, ...cmd.slice(1)], { stdout: "pipe", stderr: "pipe" });
    return (stream === "stdout" ? r.stdout : r.stderr).toString().trim().split("\n")[0] ?? null;
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const osRelease = readText("/etc/os-release") ?? "";
  const pretty = osRelease.match(/^PRETTY_NAME="?([^"\n]*)"?/m)?.[1] ?? process.platform;
  const versions: Record<string, string> = { bun: Bun.version };
  const nginx = firstLine(["nginx", "-v"], "stderr") ?? firstLine(["/usr/sbin/nginx", "-v"], "stderr");
  if (nginx) versions.nginx = nginx.replace(/^nginx version:\s*/, "");
  const wrk = wrkVersion();
  if (wrk) versions.wrk = wrk.replace(/^wrk /, "");
  versions.autocannon = autocannonVersion().replace(/^autocannon /, "");
  const node = firstLine(["node", "--version"]);
  if (node) versions.node = node;
  const ffmpeg = firstLine(["ffmpeg", "-version"]);
  if (ffmpeg) versions.ffmpeg = ffmpeg.split(" ")[2] ?? ffmpeg;
  const k6 = firstLine(["k6", "version"]);
  if (k6) versions.k6 = k6;
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: (readText("/proc/sys/kernel/osrelease") ?? "").trim() || process.platform,
    os: pretty,
    pinning: canPin() ? "servers on core 0 (taskset -c 0), load generators on core 1 (taskset -c 1)" : "NOT pinned (taskset missing or a single core): figures are noisier",
    versions,
  };
}
