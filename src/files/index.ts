/** Spool's file engine, usable by any Bun/Elysia app. */
export { FileCache, statEntity } from "./cache.ts";
export { makeEntity, statEtag, type FileEntity, type ServeOptions } from "./entity.ts";
export { serveEntity, type EngineOptions } from "./serve.ts";
export { FileReply, fileServer, sendFile, serveFile } from "./send-file.ts";
