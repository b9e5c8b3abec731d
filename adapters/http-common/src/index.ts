export { sendFile } from './send-file.ts';
export type { FileToSend } from './send-file.ts';
export { MAX_RANGES, ifRangeHolds, multipartLayout, planRanges } from './byte-ranges.ts';
export type { ByteRange, FileValidators, MultipartLayout, RangePlan, RangeRequest, WholeFileReason } from './byte-ranges.ts';
