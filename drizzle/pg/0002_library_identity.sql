CREATE TABLE "library" (
	"id" text PRIMARY KEY NOT NULL,
	"had_videos" boolean NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
INSERT INTO "library" ("id", "had_videos", "created_at") VALUES (replace(gen_random_uuid()::text, '-', ''), EXISTS (SELECT 1 FROM "videos"), now());
