// Original file: protos/cosi/state.proto

import type { LabelQuery as _cosi_resource_LabelQuery, LabelQuery__Output as _cosi_resource_LabelQuery__Output } from '../../cosi/resource/LabelQuery.js';
import type { IDQuery as _cosi_resource_IDQuery, IDQuery__Output as _cosi_resource_IDQuery__Output } from '../../cosi/resource/IDQuery.js';

export interface ListOptions {
  'labelQuery'?: (_cosi_resource_LabelQuery)[];
  'idQuery'?: (_cosi_resource_IDQuery | null);
}

export interface ListOptions__Output {
  'labelQuery': (_cosi_resource_LabelQuery__Output)[];
  'idQuery': (_cosi_resource_IDQuery__Output | null);
}
