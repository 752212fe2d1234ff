/**
 * The workers when the cluster's discovery cannot name them (pure). Talos fills `Members.cluster.talos.dev` only from
 * discovery affiliates: with `cluster.discovery.enabled: false` no registry runs and no local affiliate is written, so
 * the list is empty, not an error (siderolabs/talos internal/app/machined/pkg/controllers/cluster/config.go@v1.13.0:44-48,
 * local_affiliate.go@v1.13.0:224 and 315-330, discovery_service.go@v1.13.0:165-171, kubernetes_pull.go@v1.13.0:106-108,
 * member.go@v1.13.0:61-110). The step then asks for the workers' addresses instead of restarting only the control
 * plane without a word: typed by the user, each checked here, or "control-plane nodes only" as an explicit choice.
 */

const IPV4_PART = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${IPV4_PART}(\\.${IPV4_PART}){3}$`);

/** An IPv6 address as a URL host accepts it (compressed forms and an embedded IPv4 tail included). */
function isIPv6(text: string): boolean {
  if (!text.includes(':') || /[^0-9a-fA-F:.]/.test(text)) return false;
  try {
    return new URL(`http://[${text}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

export const isNodeAddress = (text: string): boolean => IPV4.test(text) || isIPv6(text);

/** What the user typed for the workers: the addresses, or the one sentence that says what is wrong and what to do. */
export type TypedWorkers = { ok: true; workers: string[] } | { ok: false; why: string };

/**
 * "10.0.0.5, 10.0.0.6 10.0.0.7": split at commas and spaces, each an IP address (no port: talosctl's -n takes none),
 * none of them a control-plane node already on the list; repeats count once.
 */
export function parseWorkers(text: string, controlPlane: readonly string[]): TypedWorkers {
  const words = text
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter((w) => w !== '');
  if (words.length === 0)
    return {
      ok: false,
      why: "No address was typed: type each worker's IP address, separated by commas or spaces, or choose the control-plane nodes only.",
    };
  const bad = words.find((w) => !isNodeAddress(w));
  if (bad !== undefined)
    return {
      ok: false,
      why: `"${bad}" is not an IP address: type each worker's address as \`kubectl get nodes -o wide\` shows it (INTERNAL-IP, no port), separated by commas or spaces.`,
    };
  const known = words.find((w) => controlPlane.includes(w));
  if (known !== undefined)
    return {
      ok: false,
      why: `${known} is a control-plane node, already on the list: type only the workers' addresses.`,
    };
  return { ok: true, workers: [...new Set(words)] };
}
