ALTER TABLE `videos` ADD `duration` real;--> statement-breakpoint
ALTER TABLE `videos` ADD `width` integer;--> statement-breakpoint
ALTER TABLE `videos` ADD `height` integer;--> statement-breakpoint
ALTER TABLE `videos` ADD `video_codec` text;--> statement-breakpoint
ALTER TABLE `videos` ADD `audio_codec` text;--> statement-breakpoint
ALTER TABLE `videos` ADD `bitrate` integer;--> statement-breakpoint
ALTER TABLE `videos` ADD `container` text;