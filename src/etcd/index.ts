/**
 * The snapshot toolkit's public face: offline verification, acquisition from a node, and the helpers the wizard and
 * the simulator use. (The bbolt writer, src/etcd/writer.ts, is imported directly by those who build databases.)
 */
export type { AcquiredSnapshot, SnapshotKind, SnapshotReport } from './types.js';
export { inspectSnapshot } from './inspect.js';
export type { InspectOptions } from './inspect.js';
export { acquireSnapshot, defaultSnapshotName, sha256Line, ETCD_DB_PATH } from './acquire.js';
export type { AcquireOptions } from './acquire.js';
export { sha256File, verifyTrailer, hasTrailer, digestPath, TRAILER_SIZE } from './trailer.js';
export type { TrailerVerdict, FileDigest } from './trailer.js';
export { readKeyBucket } from './keys.js';
export { formatReport, formatBytes, ProgressLine } from './format.js';
