/**
 * The project's .proto files loaded once with proto-loader (longs and enums as strings, defaults filled in), typed by
 * the generated definitions in ./generated (npm run gen:protos). The simulator and the tests' bench build their
 * servers from the same definitions, so both ends speak exactly the wire the protos describe.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protosDir } from '../paths.js';
import type { ProtoGrpcType as ClusterProto } from './generated/cluster.js';
import type { ProtoGrpcType as ConfigProto } from './generated/config.js';
import type { ProtoGrpcType as MachineProto } from './generated/machine.js';
import type { ProtoGrpcType as MetaProto } from './generated/meta.js';
import type { ProtoGrpcType as StateProto } from './generated/state.js';

export const PROTO_FILES = [
  'common/common.proto',
  'machine/machine.proto',
  'cluster/cluster.proto',
  'cosi/state.proto',
  'cosi/meta.proto',
  'resource/config/config.proto',
  'google/rpc/status.proto',
];

/** The loader options every user of these protos must share: 64-bit integers never become JS numbers. */
export const PROTO_LOADER_OPTIONS = { longs: String, enums: String, defaults: true, oneofs: true } as const;

export type TalosProtos = MachineProto & StateProto & ConfigProto & ClusterProto & MetaProto;

let cachedDefinition: protoLoader.PackageDefinition | undefined;
let cachedProtos: TalosProtos | undefined;

export function talosPackageDefinition(): protoLoader.PackageDefinition {
  cachedDefinition ??= protoLoader.loadSync(PROTO_FILES, { ...PROTO_LOADER_OPTIONS, includeDirs: [protosDir()] });
  return cachedDefinition;
}

/** The loaded services and messages: `.machine.MachineService.service`, `.cosi.resource.State.service`, … */
export function talosProtos(): TalosProtos {
  cachedProtos ??= grpc.loadPackageDefinition(talosPackageDefinition()) as unknown as TalosProtos;
  return cachedProtos;
}

export const machineService = () => talosProtos().machine.MachineService.service;
export const cosiStateService = () => talosProtos().cosi.resource.State.service;
