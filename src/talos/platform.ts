/**
 * Container-mode clusters (issue 12 item 6): Talos running as containers, e.g. `talosctl cluster create` on Docker,
 * reports `Version.platform.mode = "container"`. There a Reset stops every service and shuts the node down without
 * wiping anything (siderolabs/talos: internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer.go@v1.12.0:282-288,
 * stopAllPhaselist :477-485), and Reboot is not among the mode's capabilities
 * (internal/app/machined/pkg/runtime/mode.go@v1.12.0:98) so it answers FailedPrecondition "method is not supported in
 * container mode" (internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.12.0:126). The wipe-based
 * recovery cannot work there; the wizard must say so at Connect, before anything destructive.
 *
 * Pure: Version answers in, a verdict and one sentence out.
 */
import type { NodeResult, VersionInfo } from './types.js';

/** The platform mode Talos reports for a node running as a container. */
export const CONTAINER_MODE = 'container';

export const isContainerMode = (version: VersionInfo): boolean => version.platform?.mode === CONTAINER_MODE;

/** The nodes (among those that answered Version) that run in container mode, in the order given. */
export function containerModeNodes(versions: NodeResult<VersionInfo>[]): string[] {
  return versions.filter((result) => result.ok && isContainerMode(result.value)).map((result) => result.node);
}

/**
 * One sentence when any node runs in container mode, else null: why the procedure does not apply and what to do
 * instead (a snapshot still works; the wipe is re-creating the containers with empty volumes; the restore is
 * talosctl's own Bootstrap with --recover-from, siderolabs/talos: cmd/talosctl/cmd/talos/bootstrap.go@v1.12.0:82).
 */
export function containerModeRefusal(versions: NodeResult<VersionInfo>[]): string | null {
  const nodes = containerModeNodes(versions);
  if (nodes.length === 0) return null;
  const who = nodes.length === 1 ? `${nodes[0]} runs` : `${nodes.join(', ')} run`;
  return `${who} Talos in a container (platform mode "container", e.g. talosctl cluster create on Docker), where Reset stops a node without wiping its etcd data and Reboot is refused, so this wipe-based recovery does not apply: take a snapshot (talos-dr snapshot), re-create the control-plane containers with empty volumes, then restore it with talosctl bootstrap --recover-from=SNAPSHOT on one of them.`;
}
