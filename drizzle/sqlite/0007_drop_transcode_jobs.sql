DROP TABLE `transcode_jobs`;--> statement-breakpoint
ALTER TABLE `videos` DROP COLUMN `processing_owner`;