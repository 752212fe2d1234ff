/**
 * MachineService.Logs for a service's log (talos: internal/app/machined/internal/server/v1alpha1/
 * v1alpha1_server.go@v1.14.1:1324-1376): the "system" namespace, or the id "kubelet" in any namespace, reads machined's
 * in-memory buffer of that service; a buffer exists once the service has run on the node, else the answer is
 * `log "<id>" was not registered` (internal/app/machined/pkg/runtime/logging/circular.go@v1.14.1:236-248), a plain
 * error, so gRPC's Unknown. The simulator runs no processes, so a registered buffer holds no lines: the stream ends
 * at once, or with `follow` stays open until the caller goes, as an idle real buffer does. Containers of other
 * namespaces (Kubernetes' pods) are not simulated.
 */
import type { CallContext, Send } from './api.js';
import type { SimNode } from './node.js';
import { RpcError, unimplemented } from './rpc-error.js';

interface LogsRequest {
  namespace?: string;
  id?: string;
  follow?: boolean;
  tailLines?: number;
}

/** pkg/machinery/constants: SystemContainerdNamespace. */
const SYSTEM_NAMESPACE = 'system';
const FOLLOW_POLL_MS = 100;

export async function logs(node: SimNode, req: LogsRequest, ctx: CallContext, _send: Send): Promise<void> {
  const id = req.id ?? '';
  if (req.namespace !== SYSTEM_NAMESPACE && id !== 'kubelet') {
    throw unimplemented(
      `the simulator runs no containers: no logs for ${JSON.stringify(id)} in ${req.namespace ?? ''}`,
    );
  }
  if (!node.state.services[id]) throw new RpcError(2, `log ${JSON.stringify(id)} was not registered`);
  while (req.follow && !ctx.signal.aborted && node.reachable) {
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
  }
}
