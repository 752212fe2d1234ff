/**
 * The real etcd members' process registry: every process is tracked in one registry per simulator (RealEtcdFleet)
 * and in a process-wide set that is killed on the process's 'exit', so nothing outlives the simulator.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

const everyChild = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: whatever is still running when this process exits (a crash, process.exit) is killed by its pid.
  process.on('exit', () => {
    for (const child of everyChild) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

/** What the fleet stops: a member that must not start again once the fleet is stopping. */
interface FleetMember {
  halt(): void;
}

/** The etcd processes of one simulator: started here, stopped here (by pid), also on failure. */
export class RealEtcdFleet {
  readonly children = new Set<ChildProcess>();
  readonly backends: FleetMember[] = [];
  private closed = false;

  constructor() {
    installExitHook();
  }

  track(child: ChildProcess): void {
    this.children.add(child);
    everyChild.add(child);
    child.once('exit', () => {
      this.children.delete(child);
      everyChild.delete(child);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops every member (SIGTERM, then SIGKILL after 3 s) and waits until each has exited. Idempotent. */
  async stopAll(): Promise<void> {
    this.closed = true;
    for (const backend of this.backends) backend.halt();
    await Promise.all([...this.children].map((child) => terminate(child, 3000)));
  }
}

export async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A free TCP port on this exact loopback address (bind to 0, read it back, close). */
export async function freePortOn(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const bound = server.address();
      const port = typeof bound === 'object' && bound ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}
