/**
 * The project's .proto files loaded once with proto-loader (longs and enums as strings, defaults filled in), typed by
 * the generated definitions in ./generated (npm run gen:protos). The simulator and the tests' bench build their
 * servers from the same definitions, so both ends speak exactly the wire the protos describe.
 *
 * The build parses the .proto files once (scripts/build-protos.mjs writes them as protobufjs JSON to
 * dist/talos-protos.json) and the built CLI loads that JSON: parsing the .proto text was a good part of every gRPC
 * process's start (issue 14). The sources (vitest runs them without a build) read the .proto files themselves.
 */
import { readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { findPackageRoot, protosDir } from '../paths.js';
import type { ProtoGrpcType as ClusterProto } from './generated/cluster.js';
import type { ProtoGrpcType as ConfigProto } from './generated/config.js';
import type { ProtoGrpcType as MachineProto } from './generated/machine.js';
import type { ProtoGrpcType as MetaProto } from './generated/meta.js';
import type { ProtoGrpcType as StateProto } from './generated/state.js';
import type { ProtoGrpcType as TimeProto } from './generated/time.js';

export const PROTO_FILES = [
  'common/common.proto',
  'machine/machine.proto',
  'cluster/cluster.proto',
  'cosi/state.proto',
  'cosi/meta.proto',
  'resource/config/config.proto',
  'google/rpc/status.proto',
  // served by the simulator only (the client of talos-dr never calls TimeService)
  'time/time.proto',
];

/** The loader options every user of these protos must share: 64-bit integers never become JS numbers. */
export const PROTO_LOADER_OPTIONS = { longs: String, enums: String, defaults: true, oneofs: true } as const;

export type TalosProtos = MachineProto & StateProto & ConfigProto & ClusterProto & MetaProto & TimeProto;

let cachedDefinition: protoLoader.PackageDefinition | undefined;
let cachedProtos: TalosProtos | undefined;

/** The file `npm run build` writes in dist/: PROTO_FILES as protobufjs JSON (`Root#toJSON`). */
export const PROTOS_JSON_FILE = 'talos-protos.json';

/** The protobufjs JSON of PROTO_FILES, as scripts/build-protos.mjs writes it (proto-loader's `fromJSON` input). */
export type ProtosJson = Parameters<typeof protoLoader.fromJSON>[0];

/** The definition parsed from the .proto files. */
export function definitionFromProtoFiles(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(PROTO_FILES, { ...PROTO_LOADER_OPTIONS, includeDirs: [protosDir()] });
}

/** The definition from the build's JSON, with the same options (the JSON was parsed with them too). */
export function definitionFromJson(json: ProtosJson): protoLoader.PackageDefinition {
  return protoLoader.fromJSON(json, PROTO_LOADER_OPTIONS);
}

/** The definition from the JSON at `jsonPath` when there is one, from the .proto files otherwise. */
export function loadTalosDefinition(jsonPath: string | undefined): protoLoader.PackageDefinition {
  if (jsonPath !== undefined) {
    let text: string | undefined;
    try {
      text = readFileSync(jsonPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) return definitionFromJson(JSON.parse(text) as ProtosJson);
  }
  return definitionFromProtoFiles();
}

/**
 * dist/talos-protos.json when this module runs from the build (dist/), none when it runs from the sources: a JSON
 * left by an older build must not stand in for .proto files edited since.
 */
function builtJsonPath(): string | undefined {
  const dist = join(findPackageRoot(), 'dist');
  return fileURLToPath(import.meta.url).startsWith(dist + sep) ? join(dist, PROTOS_JSON_FILE) : undefined;
}

export function talosPackageDefinition(): protoLoader.PackageDefinition {
  cachedDefinition ??= loadTalosDefinition(builtJsonPath());
  return cachedDefinition;
}

/** The loaded services and messages: `.machine.MachineService.service`, `.cosi.resource.State.service`, … */
export function talosProtos(): TalosProtos {
  cachedProtos ??= grpc.loadPackageDefinition(talosPackageDefinition()) as unknown as TalosProtos;
  return cachedProtos;
}

export const machineService = () => talosProtos().machine.MachineService.service;
export const cosiStateService = () => talosProtos().cosi.resource.State.service;
export const timeService = () => talosProtos().time.TimeService.service;
