/**
 * S3 locations as the user writes them (s3://BUCKET/PREFIX or s3://BUCKET/KEY), kept apart from s3.ts so that telling
 * a location from a file path does not load the AWS SDK (~0.5 s of start-up that a local backup never needs).
 */
import { UserError } from '../errors.js';

export interface S3Location {
  bucket: string;
  /** the key, or the prefix to list under; '' for the whole bucket */
  key: string;
}

export function isS3Url(text: string): boolean {
  return /^s3:\/\//i.test(text);
}

/** s3://bucket/key/or/prefix → its parts; a sentence when it is not one. */
export function parseS3Url(text: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(text);
  const bucket = match?.[1] ?? '';
  if (!match || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new UserError(`${text} is not an S3 location; write it as s3://BUCKET/PREFIX or s3://BUCKET/KEY.`);
  }
  return { bucket, key: match[2] ?? '' };
}
