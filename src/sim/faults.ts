/**
 * Faults a scenario injects on the wire (PRODUCT.md §4, flaky-network): latency, a stream cut after N bytes, a node
 * unreachable for a while, a call failing K times, a node that reboots during a step, a call held open and never
 * answered (hold: until the caller's deadline or cancel). The remaining counts are part of the saved state, so a
 * resumed drill does not replay faults that already fired.
 */
import { status } from '@grpc/grpc-js';
import type { SimClock } from './clock.js';
import type { SimNode } from './node.js';
import { codeFromName, RpcError, unavailable } from './rpc-error.js';
import type { ScenarioFault } from './scenario.js';
import type { WireFaults } from './server.js';

export class FaultInjector implements WireFaults {
  /** How many more calls each fault hits (same order as the scenario's list). */
  remaining: number[];

  constructor(
    private readonly faults: ScenarioFault[],
    private readonly clock: SimClock,
    remaining?: number[],
  ) {
    this.remaining = remaining ?? faults.map((f) => f.times ?? 1);
  }

  private matching(node: SimNode, method: string): [ScenarioFault, number][] {
    return this.faults
      .map((f, i) => [f, i] as [ScenarioFault, number])
      .filter(([f]) => f.node === node.hostname && (f.method === undefined || f.method === method));
  }

  private take(i: number): boolean {
    const left = this.remaining[i] ?? 0;
    if (left <= 0) return false;
    this.remaining[i] = left - 1;
    return true;
  }

  /** Marks nodes unreachable for their fault's duration, counted from now. */
  applyUnreachable(nodes: SimNode[]): void {
    this.faults.forEach((f, i) => {
      if (f.kind !== 'unreachable' || !this.take(i)) return;
      const node = nodes.find((n) => n.hostname === f.node);
      if (node) node.unreachableUntil = Date.now() + this.clock.real((f.forSec ?? 0) * 1000);
    });
  }

  async enter(node: SimNode, method: string, signal: AbortSignal): Promise<void> {
    for (const [fault, i] of this.matching(node, method)) {
      if (fault.kind === 'latency') await this.clock.sleep(fault.ms ?? 0, signal);
      if (fault.kind === 'fail' && this.take(i)) {
        throw new RpcError(codeFromName(fault.code ?? 'Unavailable'), fault.message ?? 'connection reset by peer');
      }
      if (fault.kind === 'reboot-during' && this.take(i)) {
        node.reboot();
        throw unavailable('error reading from server: EOF');
      }
      if (fault.kind === 'hold' && this.take(i)) {
        // the node takes the call and never answers it: the call stays open until the caller gives up (its
        // deadline or a cancel), and nothing is sent back since nobody is listening any more
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          else signal.addEventListener('abort', () => resolve(), { once: true });
        });
        throw new RpcError(status.CANCELLED, 'the caller gave up on a call the node never answered');
      }
    }
  }

  cutAfter(node: SimNode, method: string): number | null {
    for (const [fault, i] of this.matching(node, method)) {
      if (fault.kind === 'cut-stream' && this.take(i)) return fault.afterBytes ?? 0;
    }
    return null;
  }
}
