/**
 * What both dialects' schemas share: the value sets of enumerated columns. Defined once here so
 * the SQLite and PostgreSQL tables (./sqlite.ts, ./pg.ts) cannot disagree on them;
 * test/unit/schema-parity.test.ts checks everything else they must agree on.
 */

export const VIDEO_STATUSES = ["importing", "uploading", "processing", "ready", "failed"] as const;
export type VideoStatus = (typeof VIDEO_STATUSES)[number];

/**
 * Who may play a video: anyone (`public`), or holders of a playback token for it (`signed`).
 * See src/access/tokens.ts.
 */
export const PLAYBACK_POLICIES = ["public", "signed"] as const;
export type Playback = (typeof PLAYBACK_POLICIES)[number];

/** The adaptive-streaming (HLS) build of a video; see src/modules/hls. */
export const HLS_STATUSES = ["none", "queued", "processing", "ready", "failed", "skipped"] as const;
export type HlsStatus = (typeof HLS_STATUSES)[number];

/** Background work, one durable queue for all of it (src/queue). */
export const JOB_KINDS = ["ingest", "transcode", "import"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const JOB_STATES = ["queued", "running", "done", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
/** States in which a job still has work to do: at most one such job per (video, kind). */
export const ACTIVE_JOB_STATES = ["queued", "running"] as const satisfies readonly JobState[];
