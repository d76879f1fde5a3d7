import { UsageError } from './cli-failure.js';

/**
 * ISO 8601 as the contract's TIME: a date, optionally a time (`T` or one space between), optionally
 * `Z` or an offset. Fractions beyond milliseconds are cut, as Date.parse cuts them.
 */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|([+-])(\d{2}):?(\d{2}))?$/;

/**
 * Reads a TIME option (`--until`) into epoch milliseconds, or throws a UsageError naming the
 * option and the value. Every field is checked against its range before the instant is
 * computed: Date.parse rolls an impossible day over into the next month (2026-02-30 becomes
 * 2026-03-02), which would restore to a point nobody asked for. Without a zone the time is the
 * host's local time, a date alone that day's midnight (the contract; Date.parse would read a bare
 * date as UTC). `24:00:00` is the end of the day (ISO 8601), the next day's midnight.
 */
export function parseTimeOption(option: string, value: string): number {
  const m = ISO_TIME.exec(value.trim());
  if (m === null) throw new UsageError(`${option}: expected an ISO 8601 time such as 2026-11-22T10:00:00Z, got ${JSON.stringify(value)}`);
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const impossible = (what: string): never => {
    throw new UsageError(`${option}: ${JSON.stringify(value)} is not a real date and time (${what})`);
  };
  if (month < 1 || month > 12) impossible(`month ${m[2]}`);
  const daysInMonth = month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (day < 1 || day > daysInMonth) impossible(`day ${m[3]} of a month with ${daysInMonth} days`);
  const endOfDay = hour === 24 && minute === 0 && second === 0 && ms === 0;
  if (hour > 23 && !endOfDay) impossible(`hour ${m[4]}`);
  if (minute > 59) impossible(`minute ${m[5]}`);
  if (second > 59) impossible(`second ${m[6]}`);
  let offsetMs: number | undefined;
  if (m[8] === 'Z') offsetMs = 0;
  else if (m[8] !== undefined) {
    const [offsetHours, offsetMinutes] = [Number(m[10]), Number(m[11])];
    if (offsetHours > 23 || offsetMinutes > 59) impossible(`offset ${m[8]}`);
    offsetMs = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  }
  // setFullYear and friends, not the constructors, which read years 0-99 as 1900-1999.
  const at = new Date(0);
  if (offsetMs === undefined) {
    at.setFullYear(year, month - 1, day);
    at.setHours(hour, minute, second, ms);
    return at.getTime();
  }
  at.setUTCFullYear(year, month - 1, day);
  at.setUTCHours(hour, minute, second, ms);
  return at.getTime() - offsetMs;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}
