/**
 * A video's jobs once none of them is running. A job's handler writes the video's new state
 * (ready, failed) before it returns; the runner records the job's own end only afterwards, so
 * a test that saw the video change must wait a moment before reading the job.
 */
import type { JobKind, JobRow } from "../../src/db/schema.ts";
import type { JobQueue } from "../../src/queue/jobs.ts";

export async function settledJobs(queue: JobQueue, videoId: string, kind?: JobKind, ms = 10_000): Promise<JobRow[]> {
  let jobs = await queue.forVideo(videoId, kind);
  for (const end = Date.now() + ms; jobs.some((j) => j.state === "running") && Date.now() < end; await Bun.sleep(50)) jobs = await queue.forVideo(videoId, kind);
  return jobs;
}
