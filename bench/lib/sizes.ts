export const KiB_64 = 64 * 1024;
export const MiB_1 = 1024 * 1024;
