/**
 * @grpc/grpc-js, loaded on first use. The snapshot, copy and upload streams go over raw HTTP/2 (h2stream.ts) and never
 * need it; loading it anyway cost every `snapshot` and upload process about 13 MB (bench/RESULTS.md, transfer). The
 * unary calls and channels ask for it here, synchronously (grpc-js is CommonJS), so their code stays as it was.
 */
import { createRequire } from 'node:module';
import type * as GrpcJs from '@grpc/grpc-js';

const require = createRequire(import.meta.url);
let loaded: typeof GrpcJs | undefined;

export function grpcJs(): typeof GrpcJs {
  return (loaded ??= require('@grpc/grpc-js') as typeof GrpcJs);
}
