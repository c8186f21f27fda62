// Where a rank's batchS rows of a sliceable shared variable come from: the host value on host
// devices, and on a device that selects rows itself (a GPU) the variable's resident copy there,
// indexed on the device (a range is one device-to-device copy, an index list one gather kernel), so
// a data set kept in a shared variable crosses the bus once, not on every call.
import type { NDArray } from '../tensor/ndarray.js';
import type { SharedVariable } from '../tensor/variable.js';
import type { Device, DeviceArray } from '../devices/device.js';
import { residentValue } from '../devices/resident.js';
import { takeHostRows, type Rows } from '../devices/rows.js';

export interface SliceableSource {
  readonly rowCount: number;
  /** The rows (a host view or copy, or a new device array the caller frees). */
  take(rows: Rows, what: string): NDArray | DeviceArray;
}

export function sliceableSource(device: Device, s: SharedVariable): SliceableSource {
  if (device.keepsSharedResident === true && device.takeRows) {
    const value = residentValue(device, s);
    if (value.shape.length === 0) throw new TypeError(`batchS: sliceable shared variable ${s.name ?? s.sharedId} is a scalar and has no rows`);
    return { rowCount: value.shape[0]!, take: (rows, what) => device.takeRows!(value, rows, what) };
  }
  const value = s.getValue({ borrow: true });
  return { rowCount: value.shape[0] ?? 0, take: (rows, what) => takeHostRows(value, rows, what) };
}
