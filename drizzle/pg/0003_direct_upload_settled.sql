ALTER TABLE "direct_uploads" ADD COLUMN "settled_at" timestamp (3) with time zone;
--> statement-breakpoint
UPDATE "direct_uploads" SET "settled_at" = "used_at";
