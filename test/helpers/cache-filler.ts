/**
 * A second process reading through a BlockCache (test/integration/block-cache.test.ts): fills
 * the blocks of one range from the bucket and prints the pieces as JSON. Argument: JSON of
 * { s3: S3StoreOptions, dir, maxBytes, blockSize, object: CachedObject, range: Span }.
 */
import { BlockCache } from "../../src/storage/block-cache.ts";
import { S3Store } from "../../src/storage/s3-store.ts";

const job = JSON.parse(process.argv[2]!);
const cache = new BlockCache({ dir: job.dir, maxBytes: job.maxBytes, blockSize: job.blockSize, store: new S3Store(job.s3) });
await cache.init();
console.log("filling");
const pieces = await cache.pieces(job.object, job.range);
console.log(JSON.stringify(cache.stats()));
console.log(JSON.stringify(pieces));
