/** The stream route's conformance cases (stream-cases.ts) on the storage the suite runs on. */
import { streamConformance } from "./stream-cases.ts";

streamConformance();
