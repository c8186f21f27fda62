// Communicators between devices (NCCL between GPUs), for the layers above devices/: the interfaces
// (devices/device-groups.ts) and the lookup by kind, which asks the device's registration, so this
// layer knows device arrays only as DeviceArrays and names no device.
export {
  DEVICE_GROUP_ID_BYTES, type DeviceCommunicator, type DeviceGroupKind, type DeviceGroupOptions,
} from '../devices/device-groups.js';
export { deviceGroupOf, hasDeviceGroup } from '../devices/create.js';
