DROP INDEX `videos_status_created_idx`;--> statement-breakpoint
CREATE INDEX `videos_created_idx` ON `videos` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `videos_status_created_idx` ON `videos` (`status`,`created_at`,`id`);