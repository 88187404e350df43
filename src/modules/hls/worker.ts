/**
 * The transcode worker: claims jobs from the durable queue and builds each video's HLS ladder
 * with ffmpeg. It runs inside the server (the default) or alone (`bun run worker`), against the
 * same database; any number may run at once.
 *
 * One job = one ffmpeg process writing into DATA_DIR/videos/<id>/.hls-tmp-<job>-<attempt>-<rand>/.
 * When ffmpeg succeeds, the master playlist and the storyboard's WebVTT are written next to its
 * output and the directory is renamed to DATA_DIR/videos/<id>/hls/ in one step, so nothing
 * half-built is ever served.
 */
import { logger } from "../../lib/log.ts";
import { jobDuration } from "../../metrics/metrics.ts";
import { EventEmitter } from "node:events";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TranscodeConfig } from "../../config.ts";
import type { TranscodeJobRow } from "../../db/schema.ts";
import type { MediaTools } from "../../media/tools.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { MASTER_NAME, PLAYLIST_NAME, STORYBOARD_VTT, buildSpriteArgs, buildTranscodeArgs } from "./args.ts";
import { TranscodeQueue, newWorkerId, retireWorkerId } from "../../queue/jobs.ts";
import { selectLadder, type Rendition } from "./ladder.ts";
import { avcCodecFromInit, hasAacTrack, measureBandwidth, parseMediaPlaylist, writeMasterPlaylist, type VariantEntry } from "./playlist.ts";
import { runTranscode, TranscodeError } from "./ffmpeg.ts";
import { progressPercent } from "./progress.ts";
import { planStoryboard, sheetName, storyboardVtt, type StoryboardPlan } from "./storyboard.ts";

export const HLS_DIR = "hls";
const TEMP_PREFIX = ".hls-tmp-";
/** Progress is written at most this often, and only when the whole percent changes. */
const PROGRESS_INTERVAL_MS = 500;
/** Ready videos without a job are looked for this often (other processes may have added them). */
const SWEEP_INTERVAL_MS = 5000;

type StopReason = "cancelled" | "lost" | "shutdown";

interface Active {
  job: TranscodeJobRow;
  abort: AbortController;
  reason?: StopReason;
  done: Promise<void>;
}

export interface WorkerLog {
  info(message: string): void;
  warn(message: string): void;
}

const consoleLog: WorkerLog = {
  info: (m) => logger("hls").info(m),
  warn: (m) => logger("hls").warn(m),
};

export class TranscodeWorker {
  readonly id = newWorkerId();
  /** "job" events: { videoId, jobId, outcome } after each attempt, for logs and tests. */
  readonly events = new EventEmitter();
  private readonly active = new Map<number, Active>();
  private stopped = true;
  private loopDone: Promise<void> = Promise.resolve();
  private wakeUp: (() => void) | null = null;
  private lastSweep = 0;

  constructor(
    private readonly library: VideoLibrary,
    private readonly queue: TranscodeQueue,
    private readonly tools: MediaTools,
    private readonly settings: TranscodeConfig,
    private readonly log: WorkerLog = consoleLog,
  ) {}

  get busy(): number {
    return this.active.size;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const requeued = this.queue.requeueDead(this.id);
    if (requeued) this.log.warn(`${requeued} transcode(s) interrupted by a crash were requeued`);
    this.loopDone = this.loop();
  }

  /** Look for work now (a job was just queued in this process). */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stops the video's transcode in this process, if any, and waits until its ffmpeg is gone. */
  async cancelVideo(videoId: string): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const active of this.active.values()) {
      if (active.job.videoId !== videoId) continue;
      active.reason ??= "cancelled";
      active.abort.abort();
      waits.push(active.done);
    }
    await Promise.all(waits);
  }

  /** Stops claiming, kills running ffmpegs and hands their jobs back to the queue. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake();
    for (const active of this.active.values()) {
      active.reason ??= "shutdown";
      active.abort.abort();
    }
    await Promise.all([this.loopDone, ...[...this.active.values()].map((a) => a.done)]);
    retireWorkerId(this.id);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (Date.now() - this.lastSweep >= SWEEP_INTERVAL_MS) {
          this.lastSweep = Date.now();
          this.queue.enqueueMissing();
        }
        while (!this.stopped && this.active.size < this.settings.concurrency) {
          const job = this.queue.claim(this.id, { staleMs: this.settings.staleMs, maxAttempts: this.settings.maxAttempts });
          if (!job) break;
          this.launch(job);
        }
      } catch (error) {
        // SQLITE_BUSY beyond the busy timeout, a full disk...: try again on the next tick.
        this.log.warn(`queue error: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.settings.pollMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wakeUp = done;
      });
      this.wakeUp = null;
    }
  }

  private launch(job: TranscodeJobRow): void {
    const active: Active = { job, abort: new AbortController(), done: Promise.resolve() };
    this.active.set(job.id, active);
    active.done = this.run(active)
      .catch((error) => {
        // Only the bookkeeping can get here (the database refused a write): the job's heartbeat
        // stops, so it is taken over once stale.
        this.log.warn(`job ${job.id}: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        this.active.delete(job.id);
        this.wake();
      });
  }

  private async run(active: Active): Promise<void> {
    const { job, abort } = active;
    const heartbeat = setInterval(() => {
      try {
        if (!this.queue.heartbeat(job.id, this.id)) {
          active.reason ??= "lost";
          abort.abort();
        }
      } catch (error) {
        this.log.warn(`heartbeat for job ${job.id} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }, this.settings.heartbeatMs);
    const videoDir = this.library.storage.videoDir(job.videoId);
    const tempDir = join(videoDir, `${TEMP_PREFIX}${job.id}-${job.attempts}-${crypto.randomUUID().slice(0, 8)}`);
    let outcome = "done";
    const started = Date.now();
    try {
      const result = await this.build(job, videoDir, tempDir, abort.signal);
      if (result.skipped) {
        this.queue.skip(job, this.id, result.skipped);
        outcome = "skipped";
      } else if (this.queue.complete(job, this.id)) {
        this.log.info(`video ${job.videoId}: HLS ladder ready (${result.renditions}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } else {
        outcome = "lost";
      }
    } catch (error) {
      if (abort.signal.aborted || (error instanceof TranscodeError && error.reason === "cancelled")) {
        outcome = active.reason ?? "cancelled";
        if (outcome === "shutdown") this.queue.release(job, this.id);
        else if (outcome === "cancelled") this.queue.cancelForVideo(job.videoId);
      } else {
        const message = error instanceof Error ? error.message : String(error);
        const result = this.queue.fail(job, this.id, message, {
          maxAttempts: this.settings.maxAttempts,
          baseMs: this.settings.retryBaseMs,
          maxMs: this.settings.retryMaxMs,
          jitter: 0.2,
        });
        outcome = result?.retrying ? "retrying" : "failed";
        this.log.warn(`video ${job.videoId}: transcode attempt ${job.attempts} failed: ${message}${result?.retrying ? " (will retry)" : ""}`);
      }
    } finally {
      clearInterval(heartbeat);
      await rm(tempDir, { recursive: true, force: true }).catch(() => {});
      // A video deleted while ffmpeg ran: ffmpeg may have recreated directories under it.
      if (!(await this.library.get(job.videoId).catch(() => undefined))) await this.library.storage.removeVideo(job.videoId).catch(() => {});
      jobDuration.observe({ kind: "transcode", outcome }, (Date.now() - started) / 1000);
      this.events.emit("job", { videoId: job.videoId, jobId: job.id, outcome });
    }
  }

  /** Probes, transcodes, measures, writes the master playlist and storyboard, publishes. */
  private async build(job: TranscodeJobRow, videoDir: string, tempDir: string, signal: AbortSignal): Promise<{ skipped?: string; renditions?: string }> {
    const row = await this.library.get(job.videoId);
    if (!row || row.status !== "ready") throw new TranscodeError("the video is gone", "", "cancelled");
    const source = this.library.absolutePath(row);
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
        try {
          this.queue.progress(job, this.id, shown);
        } catch {
          // progress is best effort; the heartbeat reports real trouble
        }
      },
    });
    if (signal.aborted) throw new TranscodeError("the transcode was cancelled", "", "cancelled");

    const variants = await Promise.all(renditions.map((r) => this.measure(tempDir, r, info.hasAudio)));
    await writeFile(join(tempDir, MASTER_NAME), writeMasterPlaylist(variants));
    if (storyboard) await this.writeStoryboard(tempDir, storyboard, duration, signal);
    await this.publish(job, videoDir, tempDir, signal);
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

  /** Swaps the finished directory in as hls/. */
  private async publish(job: TranscodeJobRow, videoDir: string, tempDir: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted || !this.queue.heartbeat(job.id, this.id)) throw new TranscodeError("the job was taken away", "", "cancelled");
    const target = join(videoDir, HLS_DIR);
    const trash = `${tempDir}.old`;
    const hadOld = await rename(target, trash).then(
      () => true,
      () => false,
    );
    await rename(tempDir, target);
    if (hadOld) await rm(trash, { recursive: true, force: true });
  }

  /** Temp directories of earlier attempts (a crashed or replaced worker's) in the video's directory. */
  private async removeStaleTemps(videoDir: string, keep: string): Promise<void> {
    const names = await readdir(videoDir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(TEMP_PREFIX) && join(videoDir, name) !== keep) await rm(join(videoDir, name), { recursive: true, force: true });
    }
  }
}
