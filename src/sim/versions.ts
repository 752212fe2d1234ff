/**
 * The Talos versions the simulator can behave as, and what differs between them (talos-behaviour-facts §0, §4, §6).
 * A drill behaves as 1.14, the current release, unless its scenario asks for an older one.
 */
export const TALOS_VERSIONS = ['1.11', '1.12', '1.13', '1.14'] as const;
export type TalosVersion = (typeof TALOS_VERSIONS)[number];
export const DEFAULT_TALOS_VERSION: TalosVersion = '1.14';

/** The release each version reports (Version.tag): the patches named in facts §0 (1.13: its first release). */
const TAGS: Record<TalosVersion, string> = {
  '1.11': 'v1.11.6',
  '1.12': 'v1.12.12',
  '1.13': 'v1.13.0',
  '1.14': 'v1.14.7',
};
/** Version.go_version: the `go` line of each tag's go.mod (talos: go.mod@v1.12.0:3, @v1.13.0:3, @v1.14.1:3). */
const GO_VERSIONS: Record<TalosVersion, string> = {
  '1.11': 'go1.24.11',
  '1.12': 'go1.25.3',
  '1.13': 'go1.26.1',
  '1.14': 'go1.26.5',
};

/**
 * The etcd each release runs (talos pkg/machinery/constants/constants.go DefaultEtcdVersion: @v1.13.0:428 v3.6.9,
 * @v1.14.1:443 3.7.1; 1.12.12 ships 3.6.14, facts §0; 1.11 as the simulator had it).
 */
const ETCD_VERSIONS: Record<TalosVersion, string> = {
  '1.11': '3.6.4',
  '1.12': '3.6.14',
  '1.13': '3.6.9',
  '1.14': '3.7.1',
};

export const etcdVersionOf = (version: string): string =>
  ETCD_VERSIONS[version as TalosVersion] ?? ETCD_VERSIONS[DEFAULT_TALOS_VERSION];

export const talosTag = (version: string): string => TAGS[version as TalosVersion] ?? TAGS[DEFAULT_TALOS_VERSION];
export const talosGoVersion = (version: string): string =>
  GO_VERSIONS[version as TalosVersion] ?? GO_VERSIONS[DEFAULT_TALOS_VERSION];

const minor = (version: string): number => Number(version.split('.')[1] ?? '14');

/** 1.13+: maintenance and regular APIs are one (talos commit b7d70cf62): REBOOT becomes NO_REBOOT in maintenance. */
export const unifiedMaintenanceApi = (version: string): boolean => minor(version) >= 13;
/** 1.14 refuses REBOOT on a configured node (v1alpha1_server.go@v1.14.1:215-221). */
export const refusesRebootMode = (version: string): boolean => minor(version) >= 14;
/** 1.13+: Bootstrap on a worker is Unimplemented via machinehelper.CheckControlplane. */
export const bootstrapChecksMachineType = (version: string): boolean => minor(version) >= 13;
/** 1.14: a directory-backed volume is wiped only with the volume it resides on (v1alpha1_server.go@v1.14.1:704-727). */
export const resetChecksBackingVolume = (version: string): boolean => minor(version) >= 14;
