/**
 * `talos-dr sim --scenario NAME --dir DIR [--port P] [--address-base IP]`: runs the simulated cluster alone until
 * SIGINT/SIGTERM, so a second terminal (talos-dr, or talosctl) can practise against it. Prints exactly one stdout line
 * when it serves: `ready endpoints=… nodes=… talosconfig=…`.
 */
import { parseArgs } from 'node:util';
import type { CommandRun } from './types.js';
import { EXIT, UsageError, UserError } from '../errors.js';
import { parseEtcdKind, realEtcdMissing } from '../sim/real-etcd-tools.js';

function parseFlags(args: string[]): {
  scenario: string;
  dir: string;
  port: number;
  addressBase?: string;
  speed: number;
  etcd: 'model' | 'real';
} {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        scenario: { type: 'string' },
        dir: { type: 'string' },
        port: { type: 'string' },
        'address-base': { type: 'string' },
        speed: { type: 'string' },
        etcd: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UsageError(
      `${detail}; usage: talos-dr sim --scenario NAME --dir DIR [--port P] [--address-base IP] [--etcd model|real].`,
    );
  }
  if (!values.scenario)
    throw new UsageError('talos-dr sim needs --scenario NAME; run "talos-dr drill --list" to see the scenarios.');
  if (!values.dir) throw new UsageError('talos-dr sim needs --dir DIR, the folder where it writes the talosconfig.');
  const port = Number(values.port ?? '50000');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port ${values.port} is not a port number; use 0 to 65535 (0 picks a free port).`);
  }
  const speed = Number(values.speed ?? '1');
  if (!Number.isFinite(speed) || speed <= 0) throw new UsageError(`--speed ${values.speed} must be a positive number.`);
  const etcd = parseEtcdKind(values.etcd);
  if (!etcd) throw new UsageError(`--etcd ${values.etcd} is not known; use --etcd model (the default) or --etcd real.`);
  return { scenario: values.scenario, dir: values.dir, port, addressBase: values['address-base'], speed, etcd };
}

const run: CommandRun = async (ctx) => {
  const flags = parseFlags(ctx.args);
  if (flags.etcd === 'real') {
    const missing = realEtcdMissing();
    if (missing) throw new UserError(missing, EXIT.failure);
  }
  const { startSimulator, SimStartError } = await import('../sim/index.js');
  let sim;
  try {
    sim = await startSimulator({
      scenario: flags.scenario,
      dir: flags.dir,
      port: flags.port,
      addressBase: flags.addressBase,
      speed: flags.speed,
      etcd: flags.etcd,
    });
  } catch (error) {
    if (error instanceof SimStartError) {
      throw error.kind === 'usage' ? new UsageError(error.message) : new UserError(error.message, EXIT.failure);
    }
    throw error;
  }
  ctx.io.stdout.write(
    `ready endpoints=${sim.endpoints.join(',')} nodes=${sim.nodes.join(',')} talosconfig=${sim.talosconfigPath}\n`,
  );
  if (!ctx.signal.aborted) {
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await sim.stop();
  return EXIT.ok;
};

export default run;
