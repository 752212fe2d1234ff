// Original file: protos/cosi/meta.proto

import type { PrintColumn as _cosi_resource_meta_PrintColumn, PrintColumn__Output as _cosi_resource_meta_PrintColumn__Output } from '../../../cosi/resource/meta/PrintColumn.js';
import type { ResourceDefinitionSpecSensitivity as _cosi_resource_meta_ResourceDefinitionSpecSensitivity, ResourceDefinitionSpecSensitivity__Output as _cosi_resource_meta_ResourceDefinitionSpecSensitivity__Output } from '../../../cosi/resource/meta/ResourceDefinitionSpecSensitivity.js';

export interface ResourceDefinitionSpec {
  'resourceType'?: (string);
  'displayType'?: (string);
  'defaultNamespace'?: (string);
  'aliases'?: (string)[];
  'allAliases'?: (string)[];
  'printColumns'?: (_cosi_resource_meta_PrintColumn)[];
  'sensitivity'?: (_cosi_resource_meta_ResourceDefinitionSpecSensitivity);
}

export interface ResourceDefinitionSpec__Output {
  'resourceType': (string);
  'displayType': (string);
  'defaultNamespace': (string);
  'aliases': (string)[];
  'allAliases': (string)[];
  'printColumns': (_cosi_resource_meta_PrintColumn__Output)[];
  'sensitivity': (_cosi_resource_meta_ResourceDefinitionSpecSensitivity__Output);
}
