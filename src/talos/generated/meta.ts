import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { PrintColumn as _cosi_resource_meta_PrintColumn, PrintColumn__Output as _cosi_resource_meta_PrintColumn__Output } from './cosi/resource/meta/PrintColumn.js';
import type { ResourceDefinitionSpec as _cosi_resource_meta_ResourceDefinitionSpec, ResourceDefinitionSpec__Output as _cosi_resource_meta_ResourceDefinitionSpec__Output } from './cosi/resource/meta/ResourceDefinitionSpec.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  cosi: {
    resource: {
      meta: {
        PrintColumn: MessageTypeDefinition<_cosi_resource_meta_PrintColumn, _cosi_resource_meta_PrintColumn__Output>
        ResourceDefinitionSpec: MessageTypeDefinition<_cosi_resource_meta_ResourceDefinitionSpec, _cosi_resource_meta_ResourceDefinitionSpec__Output>
        ResourceDefinitionSpecSensitivity: EnumTypeDefinition
      }
    }
  }
}

