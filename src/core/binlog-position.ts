/** A place in the primary's binlog: a file name and a byte offset in it. */
export interface BinlogPosition {
  file: string;
  position: number;
}

/** Orders positions: by the file's numeric suffix, then by offset. */
export function compareBinlogPositions(a: BinlogPosition, b: BinlogPosition): number {
  const sa = Number(a.file.slice(a.file.lastIndexOf('.') + 1));
  const sb = Number(b.file.slice(b.file.lastIndexOf('.') + 1));
  if (sa !== sb) return sa - sb;
  return a.position - b.position;
}

export function formatBinlogPosition(p: BinlogPosition): string {
  return `${p.file}:${p.position}`;
}

/** Parses `FILE:POS` (the file name as on the primary). Returns undefined when malformed. */
export function parseBinlogPosition(text: string): BinlogPosition | undefined {
  const match = /^([A-Za-z0-9._-]+\.\d{6,}):(\d+)$/.exec(text);
  if (match === null) return undefined;
  return { file: match[1] ?? '', position: Number(match[2]) };
}

/** The name the server gives the file after `name`. */
export function nextBinlogName(name: string): string {
  const dot = name.lastIndexOf('.');
  const digits = name.slice(dot + 1);
  const next = String(Number(digits) + 1).padStart(digits.length, '0');
  return `${name.slice(0, dot)}.${next}`;
}
