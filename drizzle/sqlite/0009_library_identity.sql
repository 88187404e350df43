CREATE TABLE `library` (
	`id` text PRIMARY KEY NOT NULL,
	`had_videos` integer NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `library` (`id`, `had_videos`, `created_at`) VALUES (lower(hex(randomblob(16))), EXISTS (SELECT 1 FROM `videos`), CAST((julianday('now') - 2440587.5) * 86400000 AS integer));
