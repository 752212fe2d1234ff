/**
 * talos-backup's snapshots where they live: an S3 bucket (or an S3-compatible endpoint) under a prefix. The AWS SDK v3
 * resolves credentials the usual way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE and the
 * shared ~/.aws/credentials and ~/.aws/config files, then instance roles) and the region from AWS_REGION or the
 * profile. A custom endpoint (--endpoint, else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or talos-backup's own
 * CUSTOM_S3_ENDPOINT, cmd/talos-backup config: pkg/config/service.go@0b3984d:25,38) is addressed path-style, as the
 * minio client talos-backup uploads with does for such endpoints.
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { _Object } from '@aws-sdk/client-s3';
import { UserError } from '../errors.js';
import { parseBackupName } from './names.js';
import type { BackupName } from './names.js';
import { isS3Url, parseS3Url } from './s3-url.js';
import type { S3Location } from './s3-url.js';

export { isS3Url, parseS3Url };
export type { S3Location };

export interface S3Options {
  /** https://host:port or http://host:port of an S3-compatible service */
  endpoint?: string;
  region?: string;
  /** path-style addressing (bucket in the path); default: on with a custom endpoint */
  pathStyle?: boolean;
  /** the environment to read the endpoint and region from (default process.env) */
  env?: NodeJS.ProcessEnv;
}

export function makeS3Client(opts: S3Options = {}): S3Client {
  const env = opts.env ?? process.env;
  const endpoint = opts.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? env.CUSTOM_S3_ENDPOINT;
  const region = opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (endpoint ? 'us-east-1' : undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new UserError(
      `The S3 endpoint ${endpoint} is not a URL; give it as https://HOST[:PORT] or http://HOST[:PORT].`,
    );
  }
  // The SDK warns on stderr, once, that its 2027 releases will need Node 22: a library's notice, not the user's problem.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
    forcePathStyle: opts.pathStyle ?? endpoint !== undefined,
    maxAttempts: 3,
  });
}

export interface BackupObject {
  bucket: string;
  key: string;
  size: number;
  lastModified: Date | null;
  /** the talos-backup name's parts; null for an object that is not named like one */
  name: BackupName | null;
  /** when it was taken: from the name, else the object's LastModified */
  takenAt: Date | null;
}

export interface BackupListing {
  location: S3Location;
  /** talos-backup snapshots, newest first */
  backups: BackupObject[];
  /** objects under the prefix that are not talos-backup snapshots */
  others: number;
}

/** Object listing is paged by 1000; stop somewhere sane on a bucket that holds far more than backups. */
const MAX_OBJECTS = 100_000;

/**
 * The talos-backup snapshots under `location` (the prefix as talos-backup writes it, `<prefix>/<file>`: a prefix
 * without a trailing slash is listed as a folder), newest first.
 */
export async function listBackups(
  client: S3Client,
  location: S3Location,
  signal?: AbortSignal,
): Promise<BackupListing> {
  const prefix = location.key === '' || location.key.endsWith('/') ? location.key : `${location.key}/`;
  const objects: _Object[] = [];
  let token: string | undefined;
  do {
    const page = await s3Call(location, () =>
      client.send(new ListObjectsV2Command({ Bucket: location.bucket, Prefix: prefix, ContinuationToken: token }), {
        abortSignal: signal,
      }),
    );
    objects.push(...(page.Contents ?? []));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && objects.length < MAX_OBJECTS);
  const backups: BackupObject[] = [];
  let others = 0;
  for (const object of objects) {
    if (!object.Key) continue;
    const name = parseBackupName(object.Key);
    if (!name) {
      others++;
      continue;
    }
    backups.push({
      bucket: location.bucket,
      key: object.Key,
      size: object.Size ?? 0,
      lastModified: object.LastModified ?? null,
      name,
      takenAt: name.takenAt,
    });
  }
  backups.sort((a, b) => (b.takenAt?.getTime() ?? 0) - (a.takenAt?.getTime() ?? 0) || (a.key < b.key ? 1 : -1));
  return { location: { bucket: location.bucket, key: prefix }, backups, others };
}

export interface S3Download {
  size: number | undefined;
  stream: AsyncIterable<Uint8Array>;
}

/**
 * How long a download may go without a byte before it is given up: a connection that hangs (a proxy, a half-open
 * socket) would otherwise hold the recovery with nothing on screen moving. The SDK's own timeouts do not cover it:
 * its socket timeout is off by default once the answer's headers are in.
 */
export const S3_STALL_MS = 30_000;

export interface OpenObjectOptions {
  signal?: AbortSignal | undefined;
  /** give up after this long without a byte (default S3_STALL_MS) */
  stallMs?: number | undefined;
}

/** Opens one object for streaming; the sentence says what to do when it cannot be. */
export async function openObject(
  client: S3Client,
  location: S3Location,
  opts: OpenObjectOptions = {},
): Promise<S3Download> {
  if (location.key === '' || location.key.endsWith('/')) {
    throw new UserError(
      `s3://${location.bucket}/${location.key} names a prefix, not a backup; give the object's full key (talos-dr backups list shows them) or add --newest.`,
    );
  }
  const answer = await s3Call(location, () =>
    client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }), {
      abortSignal: opts.signal,
    }),
  );
  const body = answer.Body as (AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => void }) | undefined;
  if (!body) throw new UserError(`s3://${location.bucket}/${location.key} came back without a body; try again.`);
  const stallMs = opts.stallMs ?? S3_STALL_MS;
  return { size: answer.ContentLength, stream: downloadErrors(watchStall(body, stallMs, location), location) };
}

/** The body's chunks, or a sentence once none has come for `stallMs` (the connection is closed then). */
async function* watchStall(
  body: AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => void },
  stallMs: number,
  location: S3Location,
): AsyncIterable<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  try {
    for (;;) {
      const stalled = new Promise<'stalled'>((resolve) => {
        timer = setTimeout(() => resolve('stalled'), stallMs);
      });
      const next = await Promise.race([iterator.next(), stalled]);
      clearTimeout(timer);
      if (next === 'stalled') {
        finished = true;
        body.destroy?.();
        throw new UserError(
          `The download of s3://${location.bucket}/${location.key} stalled: no byte came for ${seconds(stallMs)}, so it was stopped; check the connection to the S3 endpoint, then try again or choose another source.`,
        );
      }
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
    // a consumer that stops early (a wrong key, a damaged stream) releases the connection
    if (!finished) await iterator.return?.().catch(() => undefined);
  }
}

function seconds(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

async function* downloadErrors(body: AsyncIterable<Uint8Array>, location: S3Location): AsyncIterable<Uint8Array> {
  try {
    yield* body;
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(
      `The download of s3://${location.bucket}/${location.key} broke off (${shortMessage(error)}); check the connection and import again.`,
    );
  }
}

/** Runs one S3 request and turns the SDK's failures into one sentence each. */
async function s3Call<T>(location: S3Location, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw s3Sentence(error, location);
  }
}

export function s3Sentence(error: unknown, location: S3Location): UserError {
  if (error instanceof UserError) return error;
  const where = `s3://${location.bucket}/${location.key}`;
  const e = error as {
    name?: string;
    code?: string;
    Code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.name ?? e.Code ?? '';
  const status = e.$metadata?.httpStatusCode;
  const cause = (error as { cause?: { code?: string } }).cause?.code ?? e.code ?? '';
  if (name === 'AbortError') return new UserError('Stopped before S3 answered; nothing was written.', 3);
  if (name === 'NoSuchBucket')
    return new UserError(`There is no bucket ${location.bucket}; check the name, the endpoint and the region.`);
  if (name === 'NoSuchKey' || (status === 404 && location.key !== ''))
    return new UserError(`There is no object at ${where}; list the backups with talos-dr backups list.`);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return new UserError(
      'No AWS credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE for ~/.aws/credentials.',
    );
  }
  if (/Region is missing/i.test(e.message ?? '')) {
    return new UserError('No AWS region is set; set AWS_REGION or pass --region (talos-backup uses AWS_REGION too).');
  }
  if (
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch' ||
    name === 'ExpiredToken' ||
    status === 403 ||
    name === 'AccessDenied'
  ) {
    return new UserError(
      `S3 refused the credentials for ${where} (${name || `HTTP ${status}`}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE and the bucket's policy.`,
    );
  }
  if (
    ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(cause) ||
    ['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT'].includes(name) ||
    name === 'TimeoutError'
  ) {
    return new UserError(
      `The S3 endpoint cannot be reached for ${where} (${cause || name}); check the endpoint (--endpoint or AWS_ENDPOINT_URL) and the network.`,
    );
  }
  return new UserError(
    `S3 answered ${where} with an error (${name || 'unknown'}: ${shortMessage(error)}); check the location and the credentials.`,
  );
}

function shortMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n')[0] ?? '').slice(0, 160) || 'no detail';
}
