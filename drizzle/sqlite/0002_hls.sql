CREATE TABLE `transcode_jobs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`video_id` text NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`run_after` integer NOT NULL,
	`locked_by` text,
	`heartbeat_at` integer,
	`error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`video_id`) REFERENCES `videos`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `transcode_jobs_claim_idx` ON `transcode_jobs` (`state`,`run_after`);--> statement-breakpoint
CREATE INDEX `transcode_jobs_video_idx` ON `transcode_jobs` (`video_id`);--> statement-breakpoint
ALTER TABLE `videos` ADD `hls_status` text DEFAULT 'none' NOT NULL;--> statement-breakpoint
ALTER TABLE `videos` ADD `hls_progress` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `videos` ADD `hls_error` text;--> statement-breakpoint
CREATE INDEX `videos_status_hls_idx` ON `videos` (`status`,`hls_status`);