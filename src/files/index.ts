/** Spool's file engine, usable by any Bun/Elysia app. */
export { FileCache, statEntity } from "./cache.ts";
export { makeEntity, statEtag, type FileEntity, type ServeOptions } from "./entity.ts";
export { serveEntity, type EngineOptions } from "./serve.ts";
export { FileReply, fileServer, sendClip, sendFile, serveClip, serveFile } from "./send-file.ts";
export { ByteCache } from "./byte-cache.ts";
export { MemoryTier, type MemoryTierOptions } from "./memory-tier.ts";
export { ClipStore, type ClipStoreOptions, type ClipStoreStats } from "./clip-store.ts";
export {
  ClipCache,
  clipEtag,
  clipFilename,
  isClippable,
  makeClipEntity,
  parseClipInterval,
  serveClipEntity,
  type ClipCacheOptions,
  type ClipEntity,
  type ClipInterval,
  type ClipVariant,
} from "./clip.ts";
