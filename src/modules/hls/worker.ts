/**
 * The `transcode` job: builds a video's HLS ladder with ffmpeg, run by any worker
 * (src/queue/runner.ts) against the same database and storage.
 *
 * One job = one ffmpeg process writing into DATA_DIR/videos/<id>/.hls-tmp-<job>-<attempt>-<rand>/.
 * When ffmpeg succeeds, the master playlist and the storyboard's WebVTT are written next to its
 * output and the directory is renamed to DATA_DIR/videos/<id>/hls/ in one step (only while the
 * job is still this worker's), so nothing half-built is ever served. The video's HLS state is
 * written through the library as the job moves.
 */
import { DiskFull, isDiskFull } from "../../lib/disk-full.ts";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { TranscodeConfig } from "../../config.ts";
import type { JobRow } from "../../db/schema.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { syncDirectory, syncTree } from "../../lib/durable.ts";
import { logger } from "../../lib/log.ts";
import type { MediaTools } from "../../media/tools.ts";
import { StorageUnavailable, videoKeys, type ObjectStore } from "../../storage/object-store.ts";
import type { JobQueue } from "../../queue/jobs.ts";
import type { JobContext, JobHandler, JobResult, Settled } from "../../queue/runner.ts";
import { MASTER_NAME, PLAYLIST_NAME, STORYBOARD_VTT, buildSpriteArgs, buildTranscodeArgs } from "./args.ts";
import { runTranscode, TranscodeError } from "./ffmpeg.ts";
import { selectLadder, type Rendition } from "./ladder.ts";
import { avcCodecFromInit, hasAacTrack, measureBandwidth, parseMediaPlaylist, writeMasterPlaylist, type VariantEntry } from "./playlist.ts";
import { progressPercent } from "./progress.ts";
import { planStoryboard, sheetName, storyboardVtt, type StoryboardPlan } from "./storyboard.ts";

export const HLS_DIR = "hls";
const TEMP_PREFIX = ".hls-tmp-";
/** Progress is written at most this often, and only when the whole percent changes. */
const PROGRESS_INTERVAL_MS = 500;
/**
 * STORAGE=s3: how long a built ladder waits in tmp/ for the bucket to take it, retrying its puts
 * (the job still held and heartbeating), before the job is given back to wait for the outage like
 * any other, which builds the ladder again. Minutes of transcoding are not thrown away for a
 * bucket that blinked; one ladder per running job is held on disk meanwhile.
 */
const PUBLISH_PATIENCE_MS = 10 * 60_000;
const PUBLISH_RETRY_MAX_MS = 30_000;

const log = logger("hls");

/** Copies a whole object to `path`; `signal` (a cancelled job) aborts the read. */
async function download(store: ObjectStore, key: string, size: number, path: string, signal: AbortSignal): Promise<void> {
  const file = await open(path, "w");
  try {
    if (size > 0) {
      const body = await store.read(key, { start: 0, end: size - 1 }, { size, signal });
      for await (const chunk of body.stream) await file.write(chunk);
    }
  } finally {
    await file.close();
  }
}

/**
 * Puts every file of the ladder (replacing the previous ladder's files of the same name), then
 * deletes what the previous ladder had and this one does not. Idempotent: a retry after a
 * failure part-way puts everything again. A worker that lost its job during the puts (paused past
 * TRANSCODE_STALE_MS, so another worker took the job over) deletes nothing: what it would call
 * stale may be the new holder's files. Nor does one that cannot ask the database: the old files
 * are then left (no playlist names them; they go with the video).
 */
export async function putLadder(objects: ObjectStore, prefix: string, dir: string, stillMine: () => Promise<boolean>): Promise<void> {
  const keys = new Set(await objects.putDirectory(prefix, dir));
  const mine = await stillMine().catch(() => undefined);
  if (mine === false) throw new TranscodeError("the job was taken away", "", "cancelled");
  if (mine === undefined) return;
  const stale: string[] = [];
  for await (const object of objects.list(prefix)) if (!keys.has(object.key)) stale.push(object.key);
  for (const key of stale) await objects.delete(key);
}

export class TranscodeJobs implements JobHandler {
  readonly kind = "transcode" as const;
  readonly concurrency: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Ladders seen queued/processing without a job by the last sweep (acted on if still so). */
  private suspects = new Set<string>();

  constructor(
    private readonly library: VideoLibrary,
    private readonly queue: JobQueue,
    private readonly tools: MediaTools,
    private readonly settings: TranscodeConfig,
  ) {
    this.concurrency = settings.concurrency;
    this.maxAttempts = settings.maxAttempts;
    this.retryBaseMs = settings.retryBaseMs;
    this.retryMaxMs = settings.retryMaxMs;
  }

  async claimed(job: JobRow): Promise<void> {
    await this.library.setHls(job.videoId, { status: "processing", progress: 0 });
  }

  async settled(job: JobRow, s: Settled): Promise<void> {
    const id = job.videoId;
    switch (s.outcome) {
      case "done":
        return void (await this.library.setHls(id, { status: "ready", progress: 100, error: null }));
      case "skipped":
        return void (await this.library.setHls(id, { status: "skipped", progress: 0, error: s.reason }));
      case "retrying": {
        const seconds = Math.ceil(s.delayMs / 1000);
        const error = `Attempt ${s.attempts} of ${s.maxAttempts} failed (${s.error}); retrying in ${seconds} s`;
        return void (await this.library.setHls(id, { status: "queued", progress: 0, error }));
      }
      case "failed":
        // Final: no attempt comes back to clean what killed ones left (a partial ladder can be
        // gigabytes). `POST .../hls/retry` starts a new job, which makes its own.
        await this.removeStaleTemps(this.library.storage.videoDir(id), "");
        return void (await this.library.setHls(id, { status: "failed", progress: 0, error: s.error }));
      case "waiting": {
        const seconds = Math.ceil(s.delayMs / 1000);
        return void (await this.library.setHls(id, { status: "queued", progress: 0, error: `Waiting for object storage (${s.error}); trying again in ${seconds} s` }));
      }
      case "released":
        return void (await this.library.setHls(id, { status: "queued", progress: 0 }));
    }
  }

  /**
   * Ready videos still without a ladder, and ladders `queued`/`processing` whose job was lost
   * (a crash between two writes): queued (again).
   */
  async sweep(): Promise<void> {
    for (const row of await this.library.readyWithHls(["none"])) {
      if (await this.library.setHls(row.id, { status: "queued", progress: 0, error: null }, ["none"])) await this.queue.enqueue("transcode", row.id);
    }
    // Seen twice, a sweep interval apart: a state change and its job's insert are two writes,
    // and a sweep may fall between them.
    const suspects = new Set<string>();
    for (const row of await this.library.readyWithHls(["queued", "processing"])) {
      if (await this.queue.hasActive(row.id, "transcode")) continue;
      suspects.add(row.id);
      if (!this.suspects.has(row.id)) continue;
      const [last] = (await this.queue.forVideo(row.id, "transcode")).slice(-1);
      if (last?.state === "done") await this.library.setHls(row.id, { status: "ready", progress: 100, error: null });
      else if (last?.state === "failed") await this.library.setHls(row.id, { status: "failed", progress: 0, error: last.error });
      else await this.queue.enqueue("transcode", row.id);
    }
    this.suspects = suspects;
  }

  async run(job: JobRow, { signal, stillMine }: JobContext): Promise<JobResult> {
    const storage = this.library.storage;
    const videoDir = storage.videoDir(job.videoId);
    // STORAGE=s3: built in this process's tmp/ (swept if it dies) and put into the bucket.
    const tempDir = join(storage.objects ? storage.ownTmpDir : videoDir, `${TEMP_PREFIX}${job.id}-${job.attempts}-${crypto.randomUUID().slice(0, 8)}`);
    const started = Date.now();
    try {
      const result = await this.build(job, videoDir, tempDir, signal, stillMine);
      if (result.skipped) return { skipped: result.skipped };
      log.info(`video ${job.videoId}: HLS ladder ready (${result.renditions}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (error) {
      // A full disk is no fault of the video's: the build waits and runs again, uncounted.
      if (!signal.aborted && isDiskFull(error)) throw new DiskFull("to build the HLS ladder", error);
      throw error;
    } finally {
      await rm(tempDir, { recursive: true, force: true }).catch(() => {});
      await rm(`${tempDir}.source`, { force: true }).catch(() => {});
      // A video deleted while ffmpeg ran: ffmpeg may have recreated directories under it. Only a
      // lookup that answered "no such row" says so: one that failed (the database restarting)
      // once removed a ready video's source and poster, here and in the bucket.
      const gone = await this.library.get(job.videoId).then((row) => row === undefined, () => false);
      if (gone) await this.library.storage.removeVideo(job.videoId).catch(() => {});
    }
  }

  /** Probes, transcodes, measures, writes the master playlist and storyboard, publishes. */
  private async build(job: JobRow, videoDir: string, tempDir: string, signal: AbortSignal, stillMine: () => Promise<boolean>): Promise<{ skipped?: string; renditions?: string }> {
    const row = await this.library.get(job.videoId);
    if (!row || row.status !== "ready") throw new TranscodeError("the video is gone", "", "cancelled");
    const objects = this.library.storage.objects;
    const source = objects ? `${tempDir}.source` : this.library.absolutePath(row);
    // ffmpeg reads a local file (no network protocol in its input): the source comes down whole,
    // straight from the bucket (not through the block cache, which keeps what viewers watch).
    if (objects) await download(objects, row.storagePath, row.size, source, signal);
    const info = await this.tools.probe(source, { signal });
    if (!info.hasVideo || !info.width || !info.height) return { skipped: "The file has no video stream, so there is no HLS ladder to build" };
    const duration = info.duration ?? row.duration ?? 0;
    if (!(duration > 0)) throw new Error("the source's duration is unknown, so it cannot be segmented");

    const renditions = selectLadder({ width: info.width, height: info.height, fps: info.frameRate, bitrate: info.bitrate }, { maxSize: this.settings.maxHeight });
    const storyboard = planStoryboard(duration, { width: info.width, height: info.height });
    await this.removeStaleTemps(videoDir, tempDir);
    await mkdir(tempDir, { recursive: true });
    const args = buildTranscodeArgs({
      input: source,
      demuxer: info.demuxer,
      renditions,
      hasAudio: info.hasAudio,
      duration,
      segmentSeconds: this.settings.segmentSeconds,
      preset: this.settings.preset,
      storyboard,
    });

    let lastWrite = 0;
    let lastPercent = 0;
    const basis = { duration, fps: renditions[0]!.fps };
    await runTranscode({
      ffmpegPath: this.tools.ffmpegPath,
      args,
      cwd: tempDir,
      timeoutMs: this.settings.timeoutMs,
      signal,
      onProgress: (block) => {
        const percent = progressPercent(block, basis);
        if (percent === null) return;
        // 100 is for a published ladder only.
        const shown = Math.min(99, Math.floor(percent));
        const now = Date.now();
        if (shown <= lastPercent || now - lastWrite < PROGRESS_INTERVAL_MS) return;
        lastWrite = now;
        lastPercent = shown;
        // Best effort: the heartbeat reports real trouble.
        this.library.setHlsProgress(job.videoId, shown).catch(() => {});
      },
    });
    if (signal.aborted) throw new TranscodeError("the transcode was cancelled", "", "cancelled");

    const variants = await Promise.all(renditions.map((r) => this.measure(tempDir, r, info.hasAudio)));
    await writeFile(join(tempDir, MASTER_NAME), writeMasterPlaylist(variants));
    if (storyboard) await this.writeStoryboard(tempDir, storyboard, duration, signal);
    await this.publish(job.videoId, videoDir, tempDir, signal, stillMine);
    return { renditions: renditions.map((r) => r.name).join(", ") };
  }

  /** A rendition's master-playlist entry, from what ffmpeg actually wrote. */
  private async measure(dir: string, rendition: Rendition, hasAudio: boolean): Promise<VariantEntry> {
    const uri = `${rendition.name}/${PLAYLIST_NAME}`;
    const playlist = parseMediaPlaylist(await readFile(join(dir, uri), "utf8"));
    if (!playlist.endList || playlist.segments.length === 0) throw new Error(`ffmpeg left ${uri} incomplete`);
    if (!playlist.map) throw new Error(`${uri} has no init segment`);
    const sizes = await Promise.all(
      playlist.segments.map(async (s) => ({ duration: s.duration, bytes: (await stat(join(dir, rendition.name, s.uri))).size })),
    );
    const init = new Uint8Array(await readFile(join(dir, rendition.name, playlist.map)));
    const video = avcCodecFromInit(init);
    if (!video) throw new Error(`${rendition.name}: the init segment has no H.264 configuration`);
    const codecs = [video];
    if (hasAudio && hasAacTrack(init)) codecs.push("mp4a.40.2");
    return { uri, bandwidth: measureBandwidth(sizes, playlist.targetDuration), width: rendition.width, height: rendition.height, fps: rendition.fps, codecs };
  }

  /** Tiles the frames into sprite sheets and writes the WebVTT that points into them. */
  private async writeStoryboard(dir: string, plan: StoryboardPlan, duration: number, signal: AbortSignal): Promise<void> {
    const frames = (await readdir(dir)).filter((n) => n.startsWith("thumb_"));
    if (frames.length === 0) return;
    await runTranscode({ ffmpegPath: this.tools.ffmpegPath, args: buildSpriteArgs(plan), cwd: dir, timeoutMs: 120_000, signal });
    await Promise.all(frames.map((n) => rm(join(dir, n), { force: true })));
    let sheets = 0;
    while (sheets < plan.sheets && (await Bun.file(join(dir, sheetName(sheets + 1))).exists())) sheets++;
    if (sheets === 0) return;
    const count = Math.min(plan.count, frames.length, sheets * plan.columns * plan.rows);
    await writeFile(join(dir, STORYBOARD_VTT), storyboardVtt({ ...plan, count, sheets }, duration));
  }

  /**
   * Swaps the finished directory in as hls/. In a bucket: every file is put (replacing the
   * previous ladder's files of the same name; the job completes only after), then what the
   * previous ladder had and this one does not is deleted.
   */
  private async publish(id: string, videoDir: string, tempDir: string, signal: AbortSignal, stillMine: () => Promise<boolean>): Promise<void> {
    if (signal.aborted || !(await stillMine())) throw new TranscodeError("the job was taken away", "", "cancelled");
    const objects = this.library.storage.objects;
    if (objects) return this.putWhenTaken(objects, id, tempDir, signal, stillMine);
    const target = join(videoDir, HLS_DIR);
    // Durable before it is published and the job completes (src/lib/durable.ts): every segment,
    // playlist and sheet, then the swap's directory entries.
    await syncTree(tempDir);
    const trash = `${tempDir}.old`;
    const hadOld = await rename(target, trash).then(
      () => true,
      () => false,
    );
    await rename(tempDir, target);
    await syncDirectory(videoDir);
    if (hadOld) await rm(trash, { recursive: true, force: true });
  }

  /** The bucket's publish, tried again while the bucket does not answer, for PUBLISH_PATIENCE_MS at most. */
  private async putWhenTaken(objects: ObjectStore, id: string, tempDir: string, signal: AbortSignal, stillMine: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + PUBLISH_PATIENCE_MS;
    for (let delay = 1000, waited = false; ; delay = Math.min(delay * 2, PUBLISH_RETRY_MAX_MS)) {
      try {
        await putLadder(objects, videoKeys.hls(id), tempDir, stillMine);
        if (waited) log.info(`video ${id}: the bucket took the HLS ladder after an outage`);
        return;
      } catch (error) {
        if (!(error instanceof StorageUnavailable) || Date.now() + delay > deadline) throw error;
        if (!waited) log.warn(`video ${id}: HLS ladder built; waiting for object storage to take it: ${error.message}`);
        waited = true;
      }
      await sleep(delay, undefined, { signal }).catch(() => {});
      if (signal.aborted || !(await stillMine().catch(() => true))) throw new TranscodeError("the job was taken away", "", "cancelled");
    }
  }

  /** Temp directories of earlier attempts (a crashed or replaced worker's) in the video's directory. */
  private async removeStaleTemps(videoDir: string, keep: string): Promise<void> {
    const names = await readdir(videoDir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(TEMP_PREFIX) && join(videoDir, name) !== keep) await rm(join(videoDir, name), { recursive: true, force: true });
    }
  }
}
