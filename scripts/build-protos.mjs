// Writes dist/talos-protos.json: the Talos .proto files (src/talos/proto.ts's PROTO_FILES) parsed once, at build time,
// and saved as protobufjs JSON (`Root#toJSON`). The built CLI and simulator load it with proto-loader's `fromJSON`
// instead of parsing the .proto text at every start (issue 14); src/talos/proto.ts falls back to the .proto files
// when the JSON is not there (the sources under vitest).
//
// The root is built as proto-loader's loadSync builds it: the same protobufjs (the copy proto-loader itself loads),
// the well-known protos proto-loader registers (requiring it does), the include folder tried first for every import,
// and the same options (keepCase decides the field names written into the JSON). The JSON is a generated artifact,
// never committed. Run by `npm run build` after tsc (it reads PROTO_FILES from tsc's dist/src/talos/proto.js).
import { accessSync, constants, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const protoLoaderMain = require.resolve('@grpc/proto-loader');
require(protoLoaderMain); // registers the well-known protos it adds to protobufjs (api, descriptor, type, ...)
const protobuf = createRequire(protoLoaderMain)('protobufjs');

/**
 * The protobufjs JSON of `files` (paths under `includeDir`), parsed with `options` as proto-loader's loadSync would.
 * @param {string[]} files
 * @param {string} includeDir
 * @param {object} options
 */
export function protosJson(files, includeDir, options) {
  const root = new protobuf.Root();
  const defaultResolve = root.resolvePath;
  root.resolvePath = (origin, target) => {
    if (isAbsolute(target)) return target;
    const inInclude = join(includeDir, target);
    try {
      accessSync(inInclude, constants.R_OK);
      return inInclude;
    } catch {
      return defaultResolve(origin, target);
    }
  };
  root.loadSync(files, { ...options, includeDirs: [includeDir] });
  root.resolveAll();
  return root.toJSON();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const built = join(root, 'dist', 'src', 'talos', 'proto.js');
  const { PROTO_FILES, PROTO_LOADER_OPTIONS, PROTOS_JSON_FILE } = await import(pathToFileURL(built).href);
  const out = join(root, 'dist', PROTOS_JSON_FILE);
  const json = protosJson(PROTO_FILES, join(root, 'protos'), PROTO_LOADER_OPTIONS);
  writeFileSync(`${out}.tmp`, JSON.stringify(json));
  renameSync(`${out}.tmp`, out);
}
