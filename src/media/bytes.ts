/** Byte counts as people read them: 3_100_000 → "3.1 MB" (decimal units, like file managers and curl). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return `${bytes} bytes`;
  if (bytes < 1000) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
  const units = ["kB", "MB", "GB", "TB", "PB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? Math.round(value) : Number(value.toFixed(1))} ${units[unit]}`;
}

/** 30_000 → "30 s", 1500 → "1.5 s", 200 → "0.2 s". */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 1000 ? 2 : 1))} s`;
}

/** A limit in the largest unit that reads naturally: 21_600_000 → "6 h", 90_000 → "1.5 min", 1500 → "1.5 s". */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000) return `${Number((ms / 3_600_000).toFixed(1))} h`;
  if (ms >= 60_000) return `${Number((ms / 60_000).toFixed(1))} min`;
  return formatSeconds(ms);
}
