// Original file: protos/machine/machine.proto

import type { Metadata as _common_Metadata, Metadata__Output as _common_Metadata__Output } from '../common/Metadata.js';
import type { EtcdMemberAlarm as _machine_EtcdMemberAlarm, EtcdMemberAlarm__Output as _machine_EtcdMemberAlarm__Output } from '../machine/EtcdMemberAlarm.js';

export interface EtcdAlarmDisarm {
  'metadata'?: (_common_Metadata | null);
  'memberAlarms'?: (_machine_EtcdMemberAlarm)[];
}

export interface EtcdAlarmDisarm__Output {
  'metadata': (_common_Metadata__Output | null);
  'memberAlarms': (_machine_EtcdMemberAlarm__Output)[];
}
