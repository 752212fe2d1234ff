/**
 * `talosctl get <type> <id> -w`, judged by real talosctl, and the COSI Watch of one id under it.
 *
 * talosctl's table output holds its rows until a BOOTSTRAPPED event arrives or talosctl ends (talos:
 * cmd/talosctl/cmd/talos/get.go@v1.13.0:83 the deferred Flush, :158-181 Flush only once bootstrapped), and COSI sends
 * BOOTSTRAPPED only to a watch of a whole kind with its contents (cosi-project/runtime
 * pkg/state/impl/inmem/collection.go@v1.14.1:345-355 for one id: CREATED, or a DESTROYED tombstone). So against a real
 * node a table watch of one id shows nothing while it runs and its rows when it is stopped; `-o yaml` writes each
 * event at once. The simulator must send the same: the empty response, then CREATED, and never BOOTSTRAPPED; and it
 * must refuse what the COSI server refuses for one id (pkg/state/protobuf/server/server.go@v1.14.1:323-329).
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBench, type Bench } from '../sim/helpers.js';
import { peer, runPeerUntilStopped, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));
const healthy = new URL('./healthy-3cp.yaml', import.meta.url).pathname;

interface WatchEvent {
  eventType: string;
  resource?: { metadata?: { id?: string; version?: string } };
}

/** The responses of a Watch for `ms`, or its error. */
function watchFor(
  cosi: grpc.Client,
  req: unknown,
  ms: number,
): Promise<{ responses: { event: WatchEvent[] }[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const fn = (cosi as unknown as Record<string, (r: unknown) => grpc.ClientReadableStream<{ event: WatchEvent[] }>>)
      .Watch!;
    const stream = fn.call(cosi, req);
    const responses: { event: WatchEvent[] }[] = [];
    const timer = setTimeout(() => stream.cancel(), ms);
    stream.on('data', (m: { event: WatchEvent[] }) => responses.push(m));
    stream.on('error', (error: grpc.ServiceError) => {
      clearTimeout(timer);
      resolve(error.code === 1 ? { responses } : { responses, error });
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ responses });
    });
  });
}

const MACHINE_TYPE = { namespace: 'config', type: 'MachineTypes.config.talos.dev', id: 'machine-type' };

describe(`get <type> <id> --watch${skipReason('talosctl')}`, () => {
  let bench: Bench;
  let cp1: string;
  beforeAll(async () => {
    bench = await startBench(healthy, { speed: 200 });
    cp1 = bench.sim.nodes[0]!;
  });
  afterAll(async () => bench?.close());

  const talosctl = (...args: string[]) =>
    runPeerUntilStopped('talosctl', ['--talosconfig', bench.sim.talosconfigPath, '-n', cp1, ...args], {
      stopAfterMs: 2500,
      cwd: bench.dir,
    });

  it.skipIf(!have)('table output: nothing while it watches, the row when it is stopped; yaml at once', async () => {
    const table = await talosctl('get', 'machinetype', 'machine-type', '-w');
    expect(table.stderr).not.toContain('error');
    expect(table.stdoutBeforeStop).toBe('');
    expect(table.stdout).toMatch(/NODE\s+\*\s+NAMESPACE\s+TYPE\s+ID\s+VERSION/);
    expect(table.stdout).toMatch(
      // TYPE is the definition's singular display type, as a real node prints it (output/table.go@v1.13.9:49,83)
      new RegExp(`${cp1.replace(/\./g, '\\.')}\\s+\\+\\s+config\\s+MachineType\\s+machine-type\\s+1`),
    );
    expect(table.code).toBe(0);
    const yaml = await talosctl('get', 'machinetype', 'machine-type', '-w', '-o', 'yaml');
    expect(yaml.stdoutBeforeStop).toContain('event: created');
    expect(yaml.stdoutBeforeStop).toContain('spec: controlplane');
  });

  it.skipIf(!have)('an id that does not exist: a tombstone without a spec, which the table cannot print', async () => {
    const r = await talosctl('get', 'machinetype', 'no-such-id', '-w');
    expect(r.stderr).toContain('YAML spec is not specified');
    expect(r.code).toBe(1);
  });

  it('the Watch of one id: the empty response, then CREATED, never BOOTSTRAPPED', async () => {
    const { responses, error } = await watchFor(bench.cosi(cp1), { ...MACHINE_TYPE, apiVersion: 1 }, 1500);
    expect(error).toBeUndefined();
    expect(responses[0]?.event).toEqual([]);
    const events = responses.slice(1).flatMap((r) => r.event);
    expect(events.map((e) => e.eventType)).toEqual(['CREATED']);
    expect(events[0]?.resource?.metadata?.id).toBe('machine-type');
  });

  it('the Watch of one id refuses bootstrap contents and label queries as the COSI server does', async () => {
    const contents = await watchFor(
      bench.cosi(cp1),
      { ...MACHINE_TYPE, apiVersion: 1, options: { bootstrapContents: true } },
      1500,
    );
    expect(contents.error?.code).toBe(12);
    expect(contents.error?.details).toBe('bootstrap contents is not implemented for resource watch');
    expect(contents.responses).toEqual([]);
    const labels = await watchFor(
      bench.cosi(cp1),
      { ...MACHINE_TYPE, apiVersion: 1, options: { labelQuery: [{ terms: [] }] } },
      1500,
    );
    expect(labels.error?.code).toBe(12);
    expect(labels.error?.details).toBe('label query is not implemented for resource watch');
  });
});
