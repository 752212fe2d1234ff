/**
 * `npm run build` parses the Talos .proto files once and writes them as protobufjs JSON (scripts/build-protos.mjs,
 * dist/talos-protos.json); the built CLI and simulator load that JSON instead of parsing the .proto text at every
 * start (issue 14). Both must give the same definition: every service, method (path, streaming, request and response
 * types) and message (names, field numbers, types) the client and the simulator use.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type * as protoLoader from '@grpc/proto-loader';
import { afterAll, expect, it } from 'vitest';
import { protosDir } from '../../src/paths.js';
import {
  definitionFromJson,
  definitionFromProtoFiles,
  loadTalosDefinition,
  PROTO_FILES,
  PROTO_LOADER_OPTIONS,
  type ProtosJson,
} from '../../src/talos/proto.js';

const run = promisify(execFile);
const script = join(process.cwd(), 'scripts', 'build-protos.mjs');
const { protosJson } = (await import(pathToFileURL(script).href)) as {
  protosJson: (files: string[], includeDir: string, options: object) => ProtosJson;
};
const buildJson = (): ProtosJson => protosJson(PROTO_FILES, protosDir(), PROTO_LOADER_OPTIONS);

const tmp = mkdtempSync(join(tmpdir(), 'talos-dr-protos-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Entry = protoLoader.AnyDefinition;
const isService = (d: Entry): d is protoLoader.ServiceDefinition => !('format' in d);

/** What a definition says on the wire, without its functions and the file descriptors (only reflection reads them). */
function described(def: protoLoader.PackageDefinition): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(def)) {
    if (isService(d)) {
      out[name] = Object.fromEntries(
        Object.entries(d).map(([m, md]) => [
          m,
          {
            path: md.path,
            requestStream: md.requestStream,
            responseStream: md.responseStream,
            originalName: md.originalName,
            request: md.requestType.type,
            response: md.responseType.type,
            options: md.options,
          },
        ]),
      );
    } else {
      out[name] = { format: d.format, type: d.type };
    }
  }
  return out;
}

it("the build's JSON describes every service, method and message exactly as the .proto files do", () => {
  const fromFiles = definitionFromProtoFiles();
  const fromJson = definitionFromJson(buildJson());
  const machine = fromFiles['machine.MachineService'] as protoLoader.ServiceDefinition;
  const state = fromFiles['cosi.resource.State'] as protoLoader.ServiceDefinition;
  expect(Object.keys(machine)).toEqual(expect.arrayContaining(['EtcdSnapshot', 'EtcdRecover', 'Bootstrap', 'Version']));
  expect(Object.keys(state)).toEqual(expect.arrayContaining(['Get', 'List']));
  expect(Object.keys(fromJson).sort()).toEqual(Object.keys(fromFiles).sort());
  expect(described(fromJson)).toEqual(described(fromFiles));
});

it('a message written by one definition reads the same through the other (64-bit, enum, repeated, nested)', () => {
  const fromFiles = definitionFromProtoFiles();
  const fromJson = definitionFromJson(buildJson());
  const name = 'machine.EtcdAlarmListResponse';
  const message = {
    messages: [
      {
        metadata: { hostname: 'cp-1' },
        memberAlarms: [
          { memberId: '18446744073709551615', alarm: 'NOSPACE' },
          { memberId: '1', alarm: 'CORRUPT' },
        ],
      },
    ],
  };
  const a = fromFiles[name] as protoLoader.MessageTypeDefinition<object, object>;
  const b = fromJson[name] as protoLoader.MessageTypeDefinition<object, object>;
  const bytes = a.serialize(message);
  expect(b.serialize(message)).toEqual(bytes);
  expect(b.deserialize(bytes)).toEqual(a.deserialize(bytes));
  expect(b.deserialize(bytes)).toMatchObject(message);
});

it('the definition comes from the JSON when there is one, from the .proto files when there is none', () => {
  const json = buildJson() as { nested: { machine: { nested: { MachineService: { methods: object } } } } };
  const methods = json.nested.machine.nested.MachineService.methods as Record<string, unknown>;
  methods.FromTheJson = methods.Version;
  const file = join(tmp, 'protos.json');
  writeFileSync(file, JSON.stringify(json));
  const fromJson = loadTalosDefinition(file)['machine.MachineService'] as protoLoader.ServiceDefinition;
  expect(fromJson.FromTheJson?.path).toBe('/machine.MachineService/FromTheJson');

  const fallback = loadTalosDefinition(join(tmp, 'none.json'));
  expect(described(fallback)).toEqual(described(definitionFromProtoFiles()));
});

it('the built CLI reads no .proto file: npm run build wrote the JSON it loads', async () => {
  const built = join(process.cwd(), 'dist', 'src', 'talos', 'proto.js');
  expect(existsSync(built), 'run "npm run build" first').toBe(true);
  const child = `
    import fs from 'node:fs';
    const read = [];
    const original = fs.readFileSync;
    fs.readFileSync = (path, ...rest) => (read.push(String(path)), original(path, ...rest));
    const { talosProtos } = await import(${JSON.stringify(pathToFileURL(built).href)});
    const services = Object.keys(talosProtos().machine.MachineService.service).length;
    console.log(JSON.stringify({ services, protos: read.filter((p) => p.endsWith('.proto')) }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', child]);
  const seen = JSON.parse(stdout) as { services: number; protos: string[] };
  expect(seen.services).toBeGreaterThan(0);
  expect(seen.protos).toEqual([]);
});
