/**
 * Backups where they really live (issue 16), for the commands and the wizard: talos-backup files and S3 objects
 * opened as streams (source.ts), decrypted, decompressed and verified into a plain snapshot with the sha256 chain
 * (decode.ts), S3 listings newest first (s3.ts), age identities (identity.ts), and freshness as pure functions.
 */
export { importSnapshot, inspectLayered, sniffLayer, describeLayers } from './decode.js';
export type { ChainLink, DecodeLayer, ImportOptions, ImportResult, ImportSource, LayeredInspection } from './decode.js';
export { loadIdentity, parseIdentityText } from './identity.js';
export type { LoadedIdentity, PassphraseSource } from './identity.js';
export { checkBackups, openBackup } from './source.js';
export { backupAges } from './assessment.js';
export type { BackupAgeSeen } from './assessment.js';
export type { BackupsCheck, OpenBackupOptions, OpenedBackup } from './source.js';
export { isS3Url, listBackups, makeS3Client, openObject, parseS3Url } from './s3.js';
export type { BackupListing, BackupObject, S3Location, S3Options } from './s3.js';
export { parseBackupName, plainSnapshotName } from './names.js';
export type { BackupLayer, BackupName } from './names.js';
export {
  formatDuration,
  newestBackupAge,
  restoringEtcdFor,
  snapshotFreshness,
  storageVersionCheck,
} from './freshness.js';
export type { BackupAge, LiveRevision, SnapshotFreshness, StorageVersionCheck } from './freshness.js';
