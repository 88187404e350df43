/**
 * Starts Spool: opens the database, prepares storage, seeds the demo video, listens.
 * Used by src/index.ts and by the tests (which pass PORT=0 for an ephemeral port).
 */
import { resolve } from "node:path";
import { createApp, createContext, type AppContext } from "./app.ts";
import type { Config } from "./config.ts";
import { openDatabase } from "./db/client.ts";

export const DEMO_VIDEO_ID = "demo";
const DEMO_FIXTURE = resolve(import.meta.dir, "../fixtures/demo.mp4");

export interface RunningSpool {
  url: string;
  port: number;
  ctx: AppContext;
  stop(): Promise<void>;
}

async function seedDemo(ctx: AppContext): Promise<void> {
  if (await ctx.library.get(DEMO_VIDEO_ID)) return;
  await ctx.library.ingestPath(DEMO_FIXTURE, { id: DEMO_VIDEO_ID, title: "Spool demo (test pattern)", originalFilename: "spool-demo.mp4" });
}

export interface StartOptions {
  /**
   * The primary process owns start-up housekeeping (sweeping tmp/, failing interrupted uploads,
   * seeding the demo). Extra `WORKERS` processes only serve: they must not touch uploads in flight.
   */
  primary?: boolean;
}

export async function startSpool(config: Config, { primary = true }: StartOptions = {}): Promise<RunningSpool> {
  const handle = openDatabase(config.databaseUrl);
  const ctx = createContext(config, handle.db);
  await ctx.library.storage.init(primary);
  if (primary) {
    const interrupted = await ctx.library.failInterrupted();
    if (interrupted) console.warn(`[spool] ${interrupted} upload(s) interrupted by the last shutdown were marked failed`);
    if (config.seedDemo) await seedDemo(ctx);
  }

  // With several workers, each process binds the same port and the kernel spreads connections.
  const app = createApp(ctx).listen({ port: config.port, hostname: config.host, reusePort: config.workers > 1 });
  const server = app.server!;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${server.port}`,
    port: server.port!,
    ctx,
    async stop() {
      await app.stop(true);
      handle.close();
    },
  };
}
