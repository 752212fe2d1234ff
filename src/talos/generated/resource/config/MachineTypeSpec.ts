// Original file: protos/resource/config/config.proto

import type { MachineType as _resource_config_MachineType, MachineType__Output as _resource_config_MachineType__Output } from '../../resource/config/MachineType.js';

export interface MachineTypeSpec {
  'machineType'?: (_resource_config_MachineType);
}

export interface MachineTypeSpec__Output {
  'machineType': (_resource_config_MachineType__Output);
}
