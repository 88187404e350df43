ALTER TABLE `direct_uploads` ADD `settled_at` integer;
--> statement-breakpoint
UPDATE `direct_uploads` SET `settled_at` = `used_at`;
