/**
 * The stream route's conformance cases (stream-cases.ts) against STORAGE=s3: every server of
 * them gets a bucket of its own on a real s3rver and serves through the block cache
 * (S3_DELIVERY=proxy). Same bytes, same headers, same statuses as from DATA_DIR.
 */
import { useTestStorage } from "../helpers/spool.ts";
import { streamConformance } from "./stream-cases.ts";

useTestStorage("s3");
streamConformance();
