CREATE TABLE `jobs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`video_id` text NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`run_after` integer NOT NULL,
	`locked_by` text,
	`heartbeat_at` integer,
	`payload` text,
	`error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`video_id`) REFERENCES `videos`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `jobs_claim_idx` ON `jobs` (`state`,`run_after`);--> statement-breakpoint
CREATE INDEX `jobs_video_idx` ON `jobs` (`video_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_active_idx` ON `jobs` (`video_id`,`kind`) WHERE state in ('queued', 'running');--> statement-breakpoint
ALTER TABLE `videos` ADD `source_sha256` text;--> statement-breakpoint
ALTER TABLE `videos` ADD `source_size` integer;--> statement-breakpoint
-- Hand-written: HLS jobs move over with their ids and state.
INSERT OR IGNORE INTO `jobs` (`id`, `kind`, `video_id`, `state`, `attempts`, `run_after`, `locked_by`, `heartbeat_at`, `error`, `created_at`, `updated_at`)
  SELECT `id`, 'transcode', `video_id`, `state`, `attempts`, `run_after`, `locked_by`, `heartbeat_at`, `error`, `created_at`, `updated_at` FROM `transcode_jobs`;--> statement-breakpoint
-- Hand-written: processing used to be in memory; a video left `processing` gets a queued ingest job.
INSERT OR IGNORE INTO `jobs` (`kind`, `video_id`, `state`, `attempts`, `run_after`, `created_at`, `updated_at`)
  SELECT 'ingest', `id`, 'queued', 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM `videos` WHERE `status` = 'processing';
